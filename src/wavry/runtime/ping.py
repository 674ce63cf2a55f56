"""`wavry ping`: handshake, Hello, then N pings, with RTT and clock-offset statistics."""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.net.client import ClientConnection
from wavry.percentile import percentile
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.config import ClientConfig
from wavry.runtime.session import SessionFailed, establish, terminal_prompts


def _pct(values: list[float], q: float) -> float:
    p = percentile(values, q)
    assert p is not None  # callers pass non-empty lists
    return p


PingFailed = SessionFailed


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
                "p50": round(_pct(r, 0.5), 3) if r else None,
                "p95": round(_pct(r, 0.95), 3) if r else None,
                "max": round(max(r), 3) if r else None,
            },
            "clock_offset_ms": (
                round(self.clock_offset_ms, 3) if self.clock_offset_ms is not None else None
            ),
        }


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
    def out(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    est = await establish(
        host,
        port,
        ClientConfig(name=socket.gethostname(), auto_reconnect=False),
        timeout=timeout,
        pair_code=pair_code,
        host_id=host_id,
        config_dir=config_dir,
        say=out,
        prompts=terminal_prompts(),
    )
    conn, session = est.conn, est.session
    result = PingResult(
        address=est.address,
        host_id=est.host_id,
        host_name=est.host_name,
        handshake_ms=est.handshake_ms,
        codec=rift_pb2.Codec.Name(est.ack.selected_codec),
    )
    outstanding: dict[int, float] = {}
    try:
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
