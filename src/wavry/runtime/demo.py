"""`wavry demo`: a real host process and a client on loopback, with live session statistics.

The host runs as a separate `wavry host` process with its own configuration directory; the client
is paired with it beforehand (its Wavry ID is written to the host's trusted devices), so the demo
exercises the normal trust path, not the open lab mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from wavry.net.client import ClientConnection
from wavry.net.loop import loop_name
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.runtime.ping import percentile
from wavry.store import TrustedDevices, load_or_create_identity

_LISTEN_RE = re.compile(r"listening on udp://(\S+):(\d+)")


class DemoFailed(Exception):
    pass


async def _start_host(home: Path) -> tuple[asyncio.subprocess.Process, int]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "host"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wavry",
        "host",
        "--listen",
        "127.0.0.1:0",
        "--name",
        "demo-host",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
        except TimeoutError:
            break
        if not line:
            break
        text = line.decode(errors="replace").rstrip()
        print(f"  [host] {text}", flush=True)
        m = _LISTEN_RE.search(text)
        if m:
            return proc, int(m.group(2))
    proc.kill()
    raise DemoFailed("the host process did not start (see its output above)")


async def _echo_host(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        print(f"  [host] {line.decode(errors='replace').rstrip()}", flush=True)


async def run_demo(seconds: float) -> int:
    with tempfile.TemporaryDirectory(prefix="wavry-demo-") as tmp:
        home = Path(tmp)
        client_identity = load_or_create_identity(home / "client" / "wavry")
        TrustedDevices(home / "host" / "wavry").add(client_identity.wavry_id, "demo-client")
        print(f"wavry demo: host process + client on loopback ({loop_name()} event loop)")
        proc, port = await _start_host(home)
        echo = asyncio.create_task(_echo_host(proc))
        try:
            return await _client(client_identity, port, seconds)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
            with contextlib.suppress(asyncio.CancelledError):
                await echo


async def _client(identity: object, port: int, seconds: float) -> int:
    from wavry.rift.identity import Identity

    assert isinstance(identity, Identity)
    cfg = ClientConfig(name="demo-client", auto_reconnect=True)
    cfg.timing.ping_interval_s = 0.05
    session = ClientSession(identity, cfg)
    conn = ClientConnection(session)
    await conn.start("127.0.0.1", port)
    rtts: list[float] = []
    window: list[float] = []
    start = time.monotonic()
    next_report = start + 1.0
    accepted = False
    try:
        while time.monotonic() - start < seconds:
            try:
                event = await conn.next_event(max(0.0, next_report - time.monotonic()))
            except TimeoutError:
                event = None
            if isinstance(event, ev.HandshakeCompleted):
                print(f"handshake with {event.host_id} in {event.duration_s * 1000:.2f} ms")
            elif isinstance(event, ev.SessionAccepted):
                accepted = True
                a = event.ack
                print(
                    f"session accepted: codec {rift_pb2.Codec.Name(a.selected_codec)}, "
                    f"{a.stream_resolution.width}x{a.stream_resolution.height}@{a.fps}"
                )
            elif isinstance(event, ev.PongReceived):
                rtts.append(event.rtt_s * 1000)
                window.append(event.rtt_s * 1000)
            elif isinstance(event, ev.SessionClosed):
                raise DemoFailed(f"session ended: {event.message}")
            elif isinstance(event, (ev.LinkStalled, ev.Reconnecting, ev.SessionRejected)):
                print(f"event: {event}")
            if time.monotonic() >= next_report:
                next_report += 1.0
                ch = session.channel
                off = session.clock_offset_s
                off_ms = off * 1000 if off is not None else float("nan")
                tx, rx = (ch.counters.sent, ch.counters.received) if ch else (0, 0)
                p50, p95 = percentile(window, 0.5), percentile(window, 0.95)
                print(
                    f"t={time.monotonic() - start:4.1f}s  state {session.state.value:<7} "
                    f"rtt p50 {p50:6.3f} ms  p95 {p95:6.3f} ms  offset {off_ms:+7.3f} ms"
                    f"  tx {tx:5d}  rx {rx:5d}",
                    flush=True,
                )
                window.clear()
    finally:
        await conn.close("demo finished")
    if not accepted or not rtts:
        raise DemoFailed("no session was established")
    print()
    print("summary")
    print(f"  pings answered   {len(rtts)}")
    print(
        f"  rtt min/p50/p95  {min(rtts):.3f} / {percentile(rtts, 0.5):.3f} / "
        f"{percentile(rtts, 0.95):.3f} ms"
    )
    print("  (video, input and per-stage latency join this demo with the media pipeline)")
    return 0
