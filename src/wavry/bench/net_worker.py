"""Host and client roles of `wavry bench net`: synthetic frames through the real session code.

Both roles run the real asyncio adapters (HostServer / ClientConnection) over UDP sockets. They
can run in one event loop (proxy scenarios) or as separate processes inside network namespaces
(`python -m wavry.bench.net_worker host|client ...`, bottleneck scenarios), writing their logs
as JSON. Every logged time is `time.time()` (one machine, one clock), so latency = presentation
time − frame timestamp needs no offset correction; the session cores run on the adapters'
monotonic clocks, as in the product.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from wavry.net.client import ClientConnection
from wavry.net.host import HostServer
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.events import ClientAccepted, ClientTransportEvent, HostEvent, SessionAccepted
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.transport import (
    FrameReady,
    KeyframeRequested,
    RateChanged,
    SkipFramesRequested,
    TransportConfig,
)

IP_UDP_HEADER = 28


@dataclass(slots=True)
class Variant:
    name: str
    fec: bool = True
    nack: bool = True
    congestion_control: bool = True
    initial_kbps: int = 8000
    ceiling_kbps: int = 8000  # what the "encoder" wants at most (content bitrate)
    fps: int = 60
    #: 0 = keyframes on demand only (the first frame and KeyframeRequested), as `wavry host`
    #: encodes (infinite GOP); > 0 adds a periodic keyframe every this many seconds
    keyframe_interval_s: float = 0.0
    backpressure: bool = True  # skip encoding while the pacer is backlogged (as the host does)
    #: FEC codes both sides offer, in order of preference (RIFT §7; 1 = Reed-Solomon, 0 = XOR)
    fec_schemes: list[int] = field(default_factory=lambda: [1, 0])


@dataclass(slots=True)
class HostLog:
    start: float = 0.0
    end: float = 0.0
    frames: list[tuple[int, float, int, bool]] = field(default_factory=list)  # id, ts, size, key
    sent: list[tuple[int, float, int]] = field(default_factory=list)  # pid, time, size
    targets: list[tuple[float, int, int, str]] = field(default_factory=list)  # t, kbps, fps, st
    keyframe_requests: int = 0
    skip_requests: int = 0
    skipped_backlog: int = 0
    media_bytes: int = 0
    wire_bytes: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    gso_calls: int = 0
    cpu_s: float = 0.0  # this process's CPU time (user + system) from start to end


@dataclass(slots=True)
class ClientLog:
    frames: list[tuple[int, float, float, int]] = field(default_factory=list)  # id, ts, t, size
    arrivals: list[tuple[int, float, int]] = field(default_factory=list)  # pid, time, size
    jitter_target_ms: list[float] = field(default_factory=list)
    hold_ms: list[float] = field(default_factory=list)  # presented - last chunk arrival
    stats: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0  # this process's CPU time over [cpu_from, cpu_to] (wall clock)
    cpu_from: float = 0.0
    cpu_to: float = 0.0
    datagrams: int = 0  # read from the socket
    reads: int = 0  # recvmsg calls that returned data (fewer with UDP_GRO)


def host_config(v: Variant) -> HostConfig:
    t = TransportConfig(
        fec=v.fec,
        nack=v.nack,
        controller="delta" if v.congestion_control else "fixed",
        initial_bitrate_kbps=v.initial_kbps,
        fps=v.fps,
        fec_schemes=tuple(v.fec_schemes),
    )
    return HostConfig(trust_any=True, initial_bitrate_kbps=v.initial_kbps, fps=v.fps, transport=t)


def client_config(v: Variant) -> ClientConfig:
    t = TransportConfig(fec=v.fec, nack=v.nack, fec_schemes=tuple(v.fec_schemes))
    return ClientConfig(transport=t)


class SyntheticEncoder:
    """Frame sizes of a real encoder: P-frames ≈ bitrate/fps with ±20 % noise, keyframes 8×."""

    def __init__(self, seed: int = 1, keyframe_factor: float = 8.0) -> None:
        self._rng = random.Random(seed)
        self.keyframe_factor = keyframe_factor

    def size(self, kbps: float, fps: float, keyframe: bool, gop_frames: float) -> int:
        avg = kbps * 1000 / 8 / fps
        # the mean over one GOP matches the bitrate: (n - 1) P-frames + one 8× keyframe
        n = max(2.0, gop_frames)
        p = avg * n / (n - 1 + self.keyframe_factor)
        base = p * self.keyframe_factor if keyframe else p
        return max(200, int(base * self._rng.uniform(0.8, 1.2)))


class HostRole:
    def __init__(
        self, variant: Variant, duration_s: float, seed: int = 1, gso: bool = True
    ) -> None:
        self.v = variant
        self.duration = duration_s
        self.log = HostLog()
        self.endpoint = HostEndpoint(Identity.generate(), host_config(variant))
        self.server = HostServer(self.endpoint, on_event=self._on_event, gso=gso)
        self.server.on_sent = self._on_sent
        self.accepted = asyncio.Event()
        self.alias = 0
        self.kbps = float(min(variant.initial_kbps, variant.ceiling_kbps))
        self.fps = float(variant.fps)
        self.skip = 0
        self.force_key = False
        self.encoder = SyntheticEncoder(seed)
        self.streaming = False
        self.announce = False  # print "START <time>" (worker processes)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        return await self.server.start(host, port)

    def _on_sent(self, run: list[bytes], now: float) -> None:
        if self.streaming:
            # `now` (read before the send) on the wall clock: the difference of two clocks
            # read together is steady, where reading the wall clock now would add any time
            # this process was preempted since the send
            wall = now + (time.time() - self.server.clock())
            for d in run:
                self.log.sent.append((int.from_bytes(d[8:16], "big"), wall, len(d)))

    def _on_event(self, e: HostEvent) -> None:
        if isinstance(e, ClientAccepted):
            self.alias = e.alias
            self.accepted.set()
        elif isinstance(e, ClientTransportEvent):
            te = e.event
            if isinstance(te, KeyframeRequested):
                self.force_key = True
                self.log.keyframe_requests += 1
            elif isinstance(te, SkipFramesRequested):
                self.skip += te.count
                self.log.skip_requests += 1
            elif isinstance(te, RateChanged) and self.v.congestion_control:
                self.kbps = float(min(self.v.ceiling_kbps, te.target_bitrate_kbps))
                self.fps = float(te.target_fps or self.v.fps)
                self.log.targets.append(
                    (time.time(), te.target_bitrate_kbps, te.target_fps, te.state)
                )

    def _backlogged(self, now: float) -> bool:
        """The transport still needs more than half a frame interval for queued media (a
        keyframe paced at a bottleneck's rate): skip encoding this frame. The host's own
        decision (`HostEndpoint.should_skip_frame`), as `wavry host` asks it."""
        return self.endpoint.should_skip_frame(now, (self.alias,))

    async def stream(self) -> HostLog:
        await self.accepted.wait()
        loop = asyncio.get_running_loop()
        self.streaming = True
        start = time.time()
        self.log.start = start
        cpu0 = time.process_time()
        if self.announce:
            print(f"START {start:.6f}", flush=True)
        wire0, next_key = self.server.bytes_sent, start
        t_next = loop.time()
        while True:
            wall = time.time()
            now = self.server.clock()
            if wall - start >= self.duration:
                break
            if self.skip > 0:
                self.skip -= 1
            elif self.v.backpressure and not self.force_key and self._backlogged(now):
                self.log.skipped_backlog += 1
            else:
                key = self.force_key or wall >= next_key
                if key:
                    self.force_key = False
                    interval = self.v.keyframe_interval_s
                    next_key = wall + interval if interval > 0 else math.inf
                # periodic keyframes: the GOP mean matches the bitrate; on demand: P ≈ average
                gop = self.v.keyframe_interval_s * self.fps or 1e6
                size = self.encoder.size(self.kbps, self.fps, key, gop)
                ts = int(wall * 1e6)
                try:
                    fid = self.endpoint.send_frame(
                        self.alias,
                        bytes(size),
                        now,
                        keyframe=key,
                        timestamp_us=ts,
                        on_batch=self.server.send_output,  # as `wavry host` sends
                    )
                except KeyError:
                    break  # the session ended
                self.log.frames.append((fid, ts / 1e6, size, key))
                self.log.media_bytes += size
                self.server.flush()
            t_next += 1 / self.fps
            await asyncio.sleep(max(0.0, t_next - loop.time()))
        self.log.end = time.time()
        self.log.cpu_s = time.process_time() - cpu0
        self.streaming = False
        self.log.wire_bytes = self.server.bytes_sent - wire0
        s = self.endpoint.sessions.get(self.alias)
        if s is not None:
            self.log.stats = asdict(s.transport.stats)
        if self.server.gso is not None:
            self.log.gso_calls = self.server.gso.gso_calls
        return self.log

    async def close(self) -> None:
        await self.server.close()


class _LoggingClient(ClientConnection):
    def __init__(self, session: ClientSession, log: ClientLog) -> None:
        super().__init__(session, on_event=self._event)
        self.log = log
        self.accepted = asyncio.Event()

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...], arrival: float | None) -> None:
        if len(data) >= 18 and data[4:8] != b"\0\0\0\0":
            # the kernel's receive time: queueing is measured at the bottleneck, not behind
            # this process's own work
            at = time.time() if arrival is None else arrival
            self.log.arrivals.append((int.from_bytes(data[8:16], "big"), at, len(data)))
        super()._on_datagram(data, addr, arrival)

    def _event(self, e: object) -> None:
        if isinstance(e, FrameReady):
            f = e.frame
            now = time.time()
            self.log.frames.append((f.frame_id, f.timestamp_us / 1e6, now, len(f.data)))
            self.log.hold_ms.append((self.clock() - f.last_chunk_at) * 1000)
            tr = self.core.transport
            if tr is not None:
                self.log.jitter_target_ms.append(tr.jitter.delay_ms)
        elif isinstance(e, SessionAccepted):
            self.accepted.set()


class ClientRole:
    def __init__(self, variant: Variant) -> None:
        self.log = ClientLog()
        session = ClientSession(Identity.generate(), client_config(variant))
        self.conn = _LoggingClient(session, self.log)

    async def start(self, host: str, port: int) -> None:
        await self.conn.start(host, port)

    def finish(self) -> ClientLog:
        udp = self.conn.udp
        if udp is not None:
            self.log.datagrams, self.log.reads = udp.datagrams, udp.reads
        tr = self.conn.core.transport
        if tr is not None:
            self.log.stats = asdict(tr.stats)
            self.log.stats["jitter_target_ms"] = tr.jitter.delay_ms
        return self.log

    async def close(self) -> None:
        await self.conn.close()


def variant_from_json(text: str) -> Variant:
    return Variant(**json.loads(text))


async def _main_host(args: argparse.Namespace) -> None:
    v = variant_from_json(args.variant)
    role = HostRole(v, args.duration, args.seed)
    role.announce = True
    addr = await role.start(args.listen, args.port)
    print(f"READY {addr[1]}", flush=True)
    try:
        log = await asyncio.wait_for(role.stream(), args.duration + 20)
    finally:
        await role.close()
    with open(args.out, "w") as fh:
        json.dump(asdict(log), fh)


async def _main_client(args: argparse.Namespace) -> None:
    v = variant_from_json(args.variant)
    role = ClientRole(v)
    await role.start(args.connect, args.port)
    await asyncio.wait_for(role.conn.accepted.wait(), 15)
    print("ACCEPTED", flush=True)
    role.log.cpu_from, cpu0 = time.time(), time.process_time()
    await asyncio.sleep(args.duration + 1.5)
    role.log.cpu_to, role.log.cpu_s = time.time(), time.process_time() - cpu0
    log = role.finish()
    await role.close()
    with open(args.out, "w") as fh:
        json.dump(asdict(log), fh)


def main(argv: list[str] | None = None) -> None:
    from wavry.net.loop import run

    p = argparse.ArgumentParser(prog="python -m wavry.bench.net_worker")
    p.add_argument("role", choices=["host", "client"])
    p.add_argument("--listen", default="0.0.0.0")
    p.add_argument("--connect", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--variant", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    run(_main_host(args) if args.role == "host" else _main_client(args))


if __name__ == "__main__":
    main(sys.argv[1:])
