"""`wavry ping`: handshake, Hello, then N pings, with RTT and clock-offset statistics."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.net.addr import format_hostport
from wavry.net.client import ClientConnection
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.store import KnownHosts, load_or_create_identity


class PingFailed(Exception):
    """A ping run that could not complete; the message is for the user."""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def identity_mismatch_help(address: str, expected: str, got: str, pinned: bool) -> str:
    if not pinned:
        return (
            f"the host at {address} presented Wavry ID {got}, not the expected {expected}. "
            "Check the ID on the host with `wavry id`."
        )
    return (
        f"the host at {address} presented Wavry ID {got}, but this device pinned {expected} "
        f"for that address the first time it connected. If the host was reinstalled or its "
        f"identity was reset, check its new ID on the host with `wavry id`, then forget the old "
        f"pin with `wavry pins forget {address}` and connect again. Otherwise someone may be "
        "intercepting the connection: do not continue."
    )


@dataclass(slots=True)
class PingResult:
    address: str
    host_id: str = ""
    host_name: str = ""
    handshake_ms: float = 0.0
    sent: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    clock_offset_ms: float | None = None
    codec: str = ""

    def as_json(self) -> dict[str, Any]:
        r = self.rtts_ms
        return {
            "address": self.address,
            "host_id": self.host_id,
            "host_name": self.host_name,
            "handshake_ms": round(self.handshake_ms, 3),
            "sent": self.sent,
            "received": len(r),
            "rtt_ms": {
                "min": round(min(r), 3) if r else None,
                "p50": round(percentile(r, 0.5), 3) if r else None,
                "p95": round(percentile(r, 0.95), 3) if r else None,
                "max": round(max(r), 3) if r else None,
            },
            "clock_offset_ms": (
                round(self.clock_offset_ms, 3) if self.clock_offset_ms is not None else None
            ),
        }


async def _read_code() -> str:
    if not sys.stdin.isatty():
        raise PingFailed(
            "the host requires pairing: pass the 6-digit code it shows with --pair-code"
        )
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, input, "Pairing code shown on the host: ")


async def ping(
    host: str,
    port: int,
    count: int,
    interval: float,
    timeout: float = 10.0,
    pair_code: str | None = None,
    host_id: str | None = None,
    config_dir: Path | None = None,
    progress: bool = True,
) -> PingResult:
    address = format_hostport(host, port)
    identity = load_or_create_identity(config_dir)
    pins = KnownHosts(config_dir)
    pin = pins.get(address)
    expected = host_id or (pin.wavry_id if pin else None)
    session = ClientSession(
        identity, ClientConfig(name=socket.gethostname(), auto_reconnect=False), expected
    )
    conn = ClientConnection(session)
    result = PingResult(address=address)
    await conn.start(host, port)
    outstanding: dict[int, float] = {}
    code_used = False

    def out(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    try:
        deadline = time.monotonic() + timeout
        # Phase 1: handshake, Hello (and pairing when the host asks for it).
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if session.host_id is None:
                    raise PingFailed(
                        f"no answer from {address} within {timeout:g} s: is `wavry host` running "
                        f"there, and is UDP port {port} reachable?"
                    )
                raise PingFailed(f"no accepted session with {address} within {timeout:g} s")
            try:
                event = await conn.next_event(left)
            except TimeoutError:
                continue
            if isinstance(event, ev.HandshakeCompleted):
                result.host_id, result.host_name = event.host_id, event.host_name
                result.handshake_ms = event.duration_s * 1000
                if pin is None and host_id is None:
                    pins.pin(address, event.host_id)
                    out(f"pinned host identity {event.host_id} for {address} (first use)")
            elif isinstance(event, ev.SessionAccepted):
                result.codec = rift_pb2.Codec.Name(event.ack.selected_codec)
                break
            elif isinstance(event, ev.SessionRejected):
                if event.reason != rift_pb2.PAIRING_REQUIRED:
                    raise PingFailed(f"the host refused the session: {event.message}")
                if code_used:
                    raise PingFailed("pairing failed")
                out(f"host says: {event.message}")
                code = pair_code or await _read_code()
                code_used = True
                try:
                    conn.pair(code)
                except ValueError as exc:
                    raise PingFailed(str(exc)) from exc
                deadline = time.monotonic() + timeout
            elif isinstance(event, ev.PairingFinished):
                out(f"pairing: {event.message}")
                if not event.ok:
                    raise PingFailed(f"pairing failed: {event.message}")
            elif isinstance(event, ev.SessionClosed):
                if event.kind is ev.CloseKind.IDENTITY_MISMATCH and expected and session.host_id:
                    raise PingFailed(
                        identity_mismatch_help(address, expected, session.host_id, pin is not None)
                    )
                raise PingFailed(event.message)
        # Phase 2: N pings at `interval`, then wait for the stragglers.
        for i in range(count):
            ts = conn.ping()
            if ts is not None:
                outstanding[ts] = time.monotonic()
            result.sent += 1
            end = time.monotonic() + (interval if i < count - 1 else 0.0)
            await _collect(conn, result, outstanding, end, out)
        await _collect(conn, result, outstanding, time.monotonic() + 2.0, out, stop_when_done=True)
        offset = session.clock_offset_s
        result.clock_offset_ms = offset * 1000 if offset is not None else None
        return result
    finally:
        await conn.close("ping finished")


async def _collect(
    conn: ClientConnection,
    result: PingResult,
    outstanding: dict[int, float],
    until: float,
    out: Any,
    stop_when_done: bool = False,
) -> None:
    while True:
        if stop_when_done and not outstanding:
            return
        left = until - time.monotonic()
        if left <= 0:
            return
        try:
            event = await conn.next_event(left)
        except TimeoutError:
            return
        if isinstance(event, ev.PongReceived) and event.timestamp_us in outstanding:
            del outstanding[event.timestamp_us]
            result.rtts_ms.append(event.rtt_s * 1000)
            out(f"pong from {result.address}: rtt {event.rtt_s * 1000:.3f} ms")
        elif isinstance(event, ev.SessionClosed):
            raise PingFailed(f"session ended: {event.message}")
