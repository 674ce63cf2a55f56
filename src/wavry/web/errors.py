"""The web endpoint's error, importable without aioquic or websockets (the host's CLI catches it
whether or not `--web` is on)."""

from __future__ import annotations

__all__ = ["WebError"]


class WebError(Exception):
    """The web endpoint cannot start (page not built, port taken); the message says why."""
