"""A peer's signaling socket (docs/spec/CONTROL_PLANE.md §3): ``GET /v1/signal`` on the gateway,
one JSON object per text frame, authenticated by the first message.

:class:`Signaling` is one open, authenticated socket; the host's presence
(:mod:`wavry.connectivity.presence`) keeps one open for as long as it runs and reopens it with
backoff, a client (:mod:`wavry.connectivity.dial`) opens one per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from wavry.connectivity.candidates import Candidate

__all__ = [
    "DEFAULT_STUN_PORT",
    "Signaling",
    "SignalingClosed",
    "SignalingError",
    "signal_url",
]

DEFAULT_STUN_PORT = 3478
MAX_FRAME = 64 * 1024


class SignalingError(Exception):
    """The gateway answered ``error`` (``code`` is its machine code) or could not be reached."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SignalingClosed(SignalingError):
    """The socket ended (the gateway went away, or closed it with ``code``)."""


def signal_url(base_url: str) -> str:
    """``https://gw.example.org/prefix`` → ``wss://gw.example.org/prefix/v1/signal``."""
    parts = urlsplit(base_url.strip().rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme.lower())
    if scheme is None:
        raise SignalingError(
            "bad_url", f"a gateway URL starts with http:// or https://: {base_url}"
        )
    return urlunsplit((scheme, parts.netloc, parts.path + "/v1/signal", "", ""))


@dataclass(frozen=True, slots=True)
class Ready:
    user: dict[str, Any]
    wavry_id: str
    stun_port: int


class Signaling:
    """One authenticated signaling socket (use ``await Signaling.open(...)``)."""

    def __init__(self, ws: ClientConnection, ready: Ready, base_url: str) -> None:
        self._ws = ws
        self.ready = ready
        self.base_url = base_url
        self._send_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, base_url: str, token: str, wavry_id: str, role: str, timeout: float = 10.0
    ) -> Signaling:
        url = signal_url(base_url)
        try:
            ws = await asyncio.wait_for(
                connect(url, max_size=MAX_FRAME, open_timeout=timeout, compression=None), timeout
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise SignalingError(
                "unreachable", f"cannot open the gateway's signaling socket at {url}: {exc}"
            ) from None
        try:
            await ws.send(json.dumps({"type": "auth", "token": token, "wavry_id": wavry_id,
                                      "role": role}))  # fmt: skip
            first = await asyncio.wait_for(_read(ws), timeout)
        except BaseException:
            await ws.close()
            raise
        if first.get("type") == "error":
            await ws.close()
            code, message = str(first.get("code", "error")), str(first.get("message", ""))
            if code == "replaced":
                # a newer socket of this device and role authenticated while this one did: the
                # gateway closed this one before its ``ready``
                raise SignalingClosed(code, message)
            raise SignalingError(code, message)
        if first.get("type") != "ready":
            await ws.close()
            raise SignalingError("bad_answer", f"expected ready, got {first.get('type')!r}")
        stun_port = first.get("stun_port", DEFAULT_STUN_PORT)
        if not isinstance(stun_port, int) or not 1 <= stun_port <= 65535:
            stun_port = DEFAULT_STUN_PORT
        user = first.get("user")
        ready = Ready(user if isinstance(user, dict) else {}, str(first.get("wavry_id", "")),
                      stun_port)  # fmt: skip
        return cls(ws, ready, base_url)

    @property
    def stun_host(self) -> str:
        """The gateway's STUN service runs on the gateway's host (CONTROL_PLANE.md §1)."""
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    async def stun_address(self) -> tuple[str, int] | None:
        """The gateway's STUN service as an IPv4 address (None when the name does not resolve)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                self.stun_host, self.ready.stun_port, type=socket.SOCK_DGRAM, family=socket.AF_INET
            )
        except OSError:
            return None
        return str(infos[0][4][0]), int(infos[0][4][1])

    async def send(self, msg: dict[str, Any]) -> None:
        try:
            async with self._send_lock:
                await self._ws.send(json.dumps(msg))
        except ConnectionClosed as exc:
            raise SignalingClosed("closed", f"the signaling socket closed: {exc}") from None

    async def recv(self) -> dict[str, Any]:
        """The next message; SignalingClosed when the socket ends."""
        return await _read(self._ws)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()

    # ---- messages (CONTROL_PLANE.md §3) -------------------------------------------------

    async def connect(self, session: uuid.UUID, host: str, candidates: list[Candidate]) -> None:
        await self.send({"type": "connect", "session": str(session), "host": host,
                         "candidates": [c.to_json() for c in candidates]})  # fmt: skip

    async def accept(self, session: str, candidates: list[Candidate], host_id: str) -> None:
        await self.send({"type": "accept", "session": session, "host_wavry_id": host_id,
                         "candidates": [c.to_json() for c in candidates]})  # fmt: skip

    async def candidate(self, session: str, candidate: Candidate) -> None:
        await self.send({"type": "candidate", "session": session,
                         "candidate": candidate.to_json()})  # fmt: skip

    async def relay_request(self, session: str) -> None:
        await self.send({"type": "relay_request", "session": session})

    async def reject(self, session: str, reason: str) -> None:
        await self.send({"type": "reject", "session": session, "reason": reason[:200]})


async def _read(ws: ClientConnection) -> dict[str, Any]:
    while True:
        try:
            raw = await ws.recv()
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            raise SignalingClosed(
                "closed", reason or "the gateway closed the signaling socket"
            ) from None
        if isinstance(raw, bytes):
            continue
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if isinstance(msg, dict):
            return msg
