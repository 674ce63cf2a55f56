"""RIFT/1 sans-I/O protocol core (no sockets, clocks or threads)."""
