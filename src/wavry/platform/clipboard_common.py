"""What every clipboard back-end shares: the size limits, the error and the counters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONVERT_TIMEOUT", "INCR_CHUNK", "MAX_TEXT_BYTES", "POLL_S", "ClipboardError",
           "ClipboardStats"]  # fmt: skip

MAX_TEXT_BYTES = 1 << 20
"""Largest clipboard text (UTF-8 bytes) synced in either direction (issue 5: ≤ 1 MiB)."""

INCR_CHUNK = 64 * 1024
"""Bytes per property write when serving; larger texts go out with the ICCCM INCR protocol
(python-xlib has no BIG-REQUESTS, so one request carries at most ~256 KiB)."""

CONVERT_TIMEOUT = 2.0
"""Seconds to wait for a selection owner to answer (or for the next INCR chunk)."""

POLL_S = 0.25
"""Polling interval when the X server has no XFIXES (no selection-owner events)."""


class ClipboardError(RuntimeError):
    """The clipboard backend cannot run (no display, no XFIXES)."""


@dataclass
class ClipboardStats:
    """Counters; read them from any thread (values are plain ints)."""

    sent: int = 0  # local changes handed to on_local_change
    applied: int = 0  # remote texts that made us the owner
    served: int = 0  # SelectionRequests answered with data
    refused: int = 0  # SelectionRequests for targets we don't offer
    duplicates: int = 0  # local or remote text equal to the last synced text
    too_large: int = 0  # over max_bytes (either direction)
    invalid: int = 0  # not text / not decodable / conversion refused
    timeouts: int = 0  # owner did not answer a conversion in time
    errors: int = 0  # X protocol errors and callback exceptions
