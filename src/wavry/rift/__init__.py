"""RIFT/1 sans-I/O protocol core (no sockets, clocks or threads).

Its modules run compiled when a build of exactly these sources exists (wavry/native.py)."""

from wavry.native import activate as _activate

_activate(__path__)
