"""The gateway's signaling frames (docs/spec/CONTROL_PLANE.md §3): one WebSocket text frame read
as a JSON object and the field validators every message type goes through."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from wavry.gateway.signal_frames import (
    BadMessage,
    candidate_of,
    candidates_of,
    receive_frame,
    session_id_of,
)


class _Socket:
    def __init__(self, text: str | None) -> None:
        self.text = text

    async def receive(self) -> dict[str, Any]:
        return {"type": "websocket.receive", "text": self.text, "bytes": None}


def seeds() -> list[bytes]:
    sid = "8d4c8a0e-3b6f-4d5e-9a55-0c1f3e2a9b10"
    frames: list[dict[str, Any]] = [
        {"type": "auth", "token": "t"},
        {"type": "connect", "to": "user", "session": sid,
         "candidates": [{"kind": "host", "addr": "10.0.0.1:47800"}]},
        {"type": "accept", "session": sid, "candidates": []},
        {"type": "candidate", "session": sid, "candidate": {"kind": "srflx", "addr": "[::1]:1"}},
        {"type": "relay_request", "session": sid},
        {"type": "reject", "session": sid, "reason": "busy"},
    ]  # fmt: skip
    return [json.dumps(f).encode() for f in frames] + [b"[1,2]", b"{", b"\xff"]


def test_one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")  # a WebSocket text frame is valid UTF-8 (the server checks)
    except UnicodeDecodeError:
        return
    try:
        msg = asyncio.run(receive_frame(_Socket(text)))  # type: ignore[arg-type]
    except BadMessage:
        return
    for check in (session_id_of, candidates_of):
        with contextlib.suppress(BadMessage):
            check(msg)
    with contextlib.suppress(BadMessage):
        candidate_of(msg.get("candidate"))
