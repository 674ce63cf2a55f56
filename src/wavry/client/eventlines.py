"""`wavry connect --events-json FILE|-`: a running session as JSON lines, for programs that drive
the client (the desktop app), and their answers on stdin.

One JSON object per line, each with a ``type``:

- ``hello`` {version}: first line;
- ``state`` {state, detail}: connecting, streaming, stalled, reconnecting, closed;
- ``say`` {text}: a line the terminal would show;
- ``connected`` {host_name, host_id, address, codec, width, height, fps, handshake_ms};
- ``stats`` {…}: once a second, the last second (:func:`stats_event`);
- ``ask_pairing_code`` {address, host_message, attempt, error}: the host asks for its pairing
  code; answer ``{"type": "pairing_code", "code": "123456"}`` (``null``: give up);
- ``ask_identity`` {address, pinned, presented}: the host at a pinned address shows another
  identity; answer ``{"type": "identity", "trust": true}`` only after the user confirmed (the
  old pin is forgotten and the new identity pinned), ``false`` to give up;
- ``error`` {message}: the session could not be set up or failed;
- ``ended`` {ended, summary}: the end, with the ``--stats-json`` summary.

Answers come on stdin, one JSON object per line; ``{"type": "stop"}`` or the end of stdin ends
the session (a driver that goes away takes its stream with it).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["PROTOCOL_VERSION", "answer_line", "event_line", "parse_line"]

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20


def event_line(kind: str, **fields: Any) -> str:
    """One event as a line of JSON (newline included)."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"), default=str) + "\n"


def answer_line(kind: str, **fields: Any) -> bytes:
    """One answer for the session's stdin."""
    return event_line(kind, **fields).encode("utf-8")


def parse_line(raw: bytes | str) -> dict[str, Any] | None:
    """A line read from the other side: the object, or None for anything else (a blank line,
    a stray print, a line too long) — a bad line never ends the session."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_LINE:
            return None
        raw = raw.decode("utf-8", "replace")
    raw = raw.strip()
    if not raw.startswith("{"):
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return None
    return obj
