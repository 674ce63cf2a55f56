"""Signaling frames (docs/spec/CONTROL_PLANE.md §3): reading one text frame as a JSON object,
validating the fields the gateway relies on, and the ``error`` frame."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

__all__ = [
    "MAX_CANDIDATES",
    "MAX_FRAME",
    "TYPES",
    "BadMessage",
    "candidate_of",
    "candidates_of",
    "error_frame",
    "receive_frame",
    "session_id_of",
    "transport_of",
    "web_rendezvous_of",
]

MAX_FRAME = 64 * 1024
MAX_CANDIDATES = 32
TYPES = {"auth", "connect", "accept", "candidate", "relay_request", "reject"}


class BadMessage(Exception):
    def __init__(self, code: str, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


def session_id_of(msg: dict[str, Any]) -> str:
    sid = msg.get("session")
    try:
        if not isinstance(sid, str):
            raise ValueError
        return str(uuid.UUID(sid))
    except ValueError:
        raise BadMessage("invalid_message", "session must be a UUID string") from None


def candidate_of(obj: Any) -> dict[str, str]:
    if (
        not isinstance(obj, dict)
        or obj.get("kind") not in ("host", "srflx", "relay")
        or not isinstance(obj.get("addr"), str)
        or not 3 <= len(obj["addr"]) <= 64
        or ":" not in obj["addr"]
    ):
        raise BadMessage("invalid_message", 'candidate must be {"kind", "addr": "ip:port"}')
    return {"kind": obj["kind"], "addr": obj["addr"]}


def candidates_of(msg: dict[str, Any]) -> list[dict[str, str]]:
    raw = msg.get("candidates", [])
    if not isinstance(raw, list) or len(raw) > MAX_CANDIDATES:
        raise BadMessage("invalid_message", f"candidates must be a list of ≤ {MAX_CANDIDATES}")
    return [candidate_of(c) for c in raw]


def transport_of(msg: dict[str, Any]) -> str:
    """`connect.transport` (+): "udp" (the default) or "web" (a browser page, §6)."""
    transport = msg.get("transport", "udp")
    if transport not in ("udp", "web"):
        raise BadMessage("invalid_message", 'transport must be "udp" or "web"')
    return str(transport)


def web_rendezvous_of(obj: Any) -> dict[str, Any]:
    """`accept.web` (+): a host's rendezvous for browsers (§6, RIFT.md §11)."""
    cert = obj.get("cert_sha256") if isinstance(obj, dict) else None
    raw = obj.get("candidates") if isinstance(obj, dict) else None
    if (
        not isinstance(cert, str)
        or len(cert) != 43
        or not all(c.isalnum() or c in "-_" for c in cert)
        or not isinstance(raw, list)
        or not 1 <= len(raw) <= MAX_CANDIDATES
    ):
        raise BadMessage(
            "invalid_message", 'web must be {"cert_sha256": base64url, "candidates": [...]}'
        )
    cands = []
    for c in raw:
        if (
            not isinstance(c, dict)
            or c.get("kind") not in ("host", "srflx", "mapped")
            or not isinstance(c.get("addr"), str)
            or not 3 <= len(c["addr"]) <= 64
            or ":" not in c["addr"]
        ):
            raise BadMessage("invalid_message", 'a web candidate is {"kind", "addr": "ip:port"}')
        cands.append({"kind": c["kind"], "addr": c["addr"]})
    return {"cert_sha256": cert, "candidates": cands}


def error_frame(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


async def receive_frame(ws: WebSocket) -> dict[str, Any]:
    """One text frame as a JSON object; binary, oversized, or non-object frames are fatal."""
    event = await ws.receive()
    if event["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(event.get("code", 1000))
    if event.get("text") is None:
        raise BadMessage("binary_frame", "only text frames are accepted", close=True)
    text: str = event["text"]
    if len(text) > MAX_FRAME or len(text.encode("utf-8")) > MAX_FRAME:
        raise BadMessage("too_large", f"frames are limited to {MAX_FRAME} bytes", close=True)
    try:
        msg = json.loads(text)
    except ValueError:
        raise BadMessage("invalid_message", "frames must be JSON objects", close=True) from None
    if not isinstance(msg, dict):
        raise BadMessage("invalid_message", "frames must be JSON objects", close=True)
    kind = msg.get("type")
    if not isinstance(kind, str) or kind not in TYPES:  # a list is unhashable (found by fuzzing)
        raise BadMessage("unknown_type", f"unknown message type {kind!r:.80}", close=True)
    return msg
