"""Wall-clock steps (an NTP correction) do not touch a running session (real loopback sockets).

The core runs on the adapters' monotonic clock; the wall clock only stamps what goes on the
wire (frame timestamps, Ping/Pong). Here both peers' wall clocks are injected and stepped by
±60 s while the host streams 60 fps: video keeps flowing, nothing is declared stalled or
lost, no NACK is sent and the round trips stay those of loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from wavry.net.client import ClientConnection
from wavry.net.host import HostServer
from wavry.net.loop import run
from wavry.rift import events as ev
from wavry.rift.client import ClientSession
from wavry.rift.config import HostConfig
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.transport import FrameReady

STEP_S = 60.0
PHASE_S = 0.8


class SteppedClock:
    """time.time() plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def _session_through_steps() -> dict[str, object]:
    host_wall, client_wall = SteppedClock(), SteppedClock()
    host_events: list[object] = []
    client_events: list[tuple[float, object]] = []
    endpoint = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
    server = HostServer(endpoint, host_events.append, wall_clock=host_wall)
    addr = await server.start("127.0.0.1", 0)
    conn = ClientConnection(
        ClientSession(Identity.generate()),
        on_event=lambda e: client_events.append((time.monotonic(), e)),
        wall_clock=client_wall,
    )
    await conn.start(*addr)
    try:
        deadline = time.monotonic() + 10
        while not any(isinstance(e, ev.ClientAccepted) for e in host_events):
            assert time.monotonic() < deadline, "no session"
            await asyncio.sleep(0.01)
        alias = next(e.alias for e in host_events if isinstance(e, ev.ClientAccepted))
        steps = [
            (host_wall, -STEP_S),
            (host_wall, +2 * STEP_S),
            (host_wall, -STEP_S),
            (client_wall, -STEP_S),
            (client_wall, +2 * STEP_S),
            (client_wall, -STEP_S),
        ]
        sent = 0
        duration = PHASE_S * (len(steps) + 1)
        start = time.monotonic()
        next_step = start + PHASE_S
        step_times: list[float] = []
        while time.monotonic() - start < duration:
            if steps and time.monotonic() >= next_step:
                clock, delta = steps.pop(0)
                clock.offset += delta
                step_times.append(time.monotonic())
                next_step += PHASE_S
            now = server.clock()
            # a frame stamped with the host's wall clock at capture, as `wavry host` does
            endpoint.send_frame(
                alias,
                bytes(6000),
                now,
                keyframe=sent == 0,
                timestamp_us=int(host_wall() * 1e6),
                on_batch=server.send_output,
            )
            server.flush()
            sent += 1
            await asyncio.sleep(1 / 60)
        await asyncio.sleep(0.3)
        session = endpoint.sessions.get(alias)
        client_tr = conn.core.transport
        assert session is not None and client_tr is not None
        return {
            "sent": sent,
            "host_events": list(host_events),
            "client_events": list(client_events),
            "step_times": step_times,
            "client_stats": client_tr.stats,
            "host_stats": session.transport.stats,
            "jitter_ms": client_tr.jitter.delay_ms,
            "rtt_s": conn.core.clock.srtt_s,
            "offset_s": conn.core.clock_offset_s,
            "decision": session.transport.decision,
            "state": conn.core.state,
        }
    finally:
        await conn.close()
        await server.close()


def test_wall_clock_steps_leave_a_streaming_session_untouched() -> None:
    r = run(_session_through_steps())
    host_events, client_events = r["host_events"], r["client_events"]
    assert isinstance(host_events, list) and isinstance(client_events, list)
    bad_host = (ev.ClientStalled, ev.ClientGone, ev.ClientMigrated)
    assert not [e for e in host_events if isinstance(e, bad_host)]
    bad_client = (ev.LinkStalled, ev.Reconnecting, ev.SessionClosed)
    assert not [e for _, e in client_events if isinstance(e, bad_client)]
    frames = [t for t, e in client_events if isinstance(e, FrameReady)]
    sent = r["sent"]
    assert isinstance(sent, int) and len(frames) >= 0.9 * sent
    # video flows through every step: a gap of a second at most (a busy machine stalls a
    # process now and then; a clock step freezes video for the step, or for good)
    gaps = [b - a for a, b in itertools.pairwise(frames)]
    assert max(gaps) < 1.0
    step_times = r["step_times"]
    assert isinstance(step_times, list) and len(step_times) == 6
    for t in step_times:
        assert sum(1 for f in frames if t < f < t + 0.75) >= 10  # right after each step
    stats = r["client_stats"]
    assert stats.nacks_sent == 0 and stats.frames_completed >= 0.9 * sent  # type: ignore[attr-defined]
    assert r["host_stats"].frames_dropped_sender == 0  # type: ignore[attr-defined]
    rtt = r["rtt_s"]
    assert isinstance(rtt, float) and rtt < 0.05  # loopback, not a 60 s "round trip"
    offset = r["offset_s"]
    assert isinstance(offset, float) and abs(offset) < 0.5  # both clocks are back in step
    assert r["jitter_ms"] == 0.0
    # DELTA saw no minute-long "queue" (on the stepped clock it did, and cut the rate)
    decision = r["decision"]
    assert decision.queue_delay_ms < 1000  # type: ignore[attr-defined]
