"""Fake-clock scripted network for tuning loss repair (not a test, not a benchmark).

A real host and client session core (HostEndpoint, ClientSession: sealing, FEC, NACK, feedback,
DELTA, pacing, assembly, jitter buffer) over a 10 ms path each way that loses datagrams in both
directions, on a simulated clock: no sockets and no threads, so the machine's load cannot
disturb it and a run gives the same figures every time. docs/rate-control.md ("The same
arithmetic for an MDS code") quotes it.

    .venv/bin/python scripts/fec_scripted.py LOSS VARIANT [SECONDS [SEED [REF_MS]]]

LOSS: none | rand1 | rand2 | ge (Gilbert 3 %, mean burst 3, as `wavry bench net` burst-3pct);
VARIANT: rs | xor | none (no FEC). Frames: 8 Mbit/s, 60 fps, ±20 %, a keyframe first and on
request. On time = presented within REF_MS (the clean run's median frame latency; default this
run's median) + one frame interval, as `wavry bench net` counts it. Prints one JSON line.
`TUNE=prior_packets=50,refit_s=0.05` overrides any of the policy's RedundancyTunables (numbers),
`TARGET=0.004` its frame-loss target, `COST=1.5` the frames an
unrepaired frame costs (else the sender's `2 + RTT / interval`).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import os
import random
import statistics
import sys
from typing import Any

import wavry.rift.sender as sender_module
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.events import ClientTransportEvent
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.transport import FrameReady, KeyframeRequested, TransportConfig

T0 = 1_700_000_000.0
STEP = 0.0005
ADDR = ("10.0.0.2", 50000)


class Loss:
    def __init__(self, kind: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.kind = kind
        self.bad = False

    def lost(self) -> bool:
        if self.kind == "none":
            return False
        if self.kind.startswith("rand"):
            return self.rng.random() < float(self.kind[4:]) / 100
        r = 1 / 3  # Gilbert: 3 % loss, mean burst 3
        p = 0.03 * r / 0.97
        self.bad = self.rng.random() < ((1 - r) if self.bad else p)
        return self.bad


def run(
    loss: str,
    fec: bool = True,
    schemes: tuple[int, ...] = (1, 0),
    seconds: float = 12.0,
    seed: int = 1,
    ref_s: float | None = None,
    kbps: int = 8000,
    delay: float = 0.010,
) -> dict[str, Any]:
    def config() -> TransportConfig:
        return TransportConfig(fec=fec, fec_schemes=schemes, initial_bitrate_kbps=kbps)

    host_cfg = HostConfig(trust_any=True, transport=config(), initial_bitrate_kbps=kbps)
    host = HostEndpoint(Identity.generate(), host_cfg)
    client = ClientSession(Identity.generate(), ClientConfig(transport=config()))
    client.connect(T0)
    now = T0
    heap: list[tuple[float, int, str, bytes]] = []
    seq = itertools.count()
    h2c, c2h = Loss(loss, seed), Loss(loss, seed + 100)
    rng = random.Random(seed + 7)
    frames: dict[int, float] = {}
    presented: list[tuple[int, float]] = []
    wire = media = 0
    force_key = True
    key_requests: list[float] = []

    def collect() -> None:
        nonlocal wire
        for d in client.datagrams_to_send(now):
            if not c2h.lost():
                heapq.heappush(heap, (now + delay, next(seq), "h", d))
        for d, _ in host.datagrams_to_send(now):
            wire += len(d)
            if not h2c.lost():
                heapq.heappush(heap, (now + delay, next(seq), "c", d))

    start = next_frame = now + 0.3
    end = start + seconds
    alias: int | None = None
    while now < end + 0.5:
        now += STEP
        if alias is None and host.sessions and now >= next_frame:
            alias = next(iter(host.sessions))
        if alias is not None and now >= next_frame and now < end:
            key, force_key = force_key, False
            avg = kbps * 1000 / 8 / 60
            size = max(200, int((avg * 8 if key else avg) * rng.uniform(0.8, 1.2)))
            if not host.should_skip_frame(now, (alias,)):
                ts = int(now * 1e6)
                fid = host.send_frame(alias, bytes(size), now, keyframe=key, timestamp_us=ts)
                frames[fid] = now
                media += size
            next_frame += 1 / 60
        for side in (client, host):
            t = side.next_timer()
            if t is not None and t <= now:
                side.handle_timer(now)
        collect()
        while heap and heap[0][0] <= now + 1e-12:
            _, _, to, d = heapq.heappop(heap)
            if to == "h":
                host.receive_datagram(d, ADDR, now)
            else:
                client.receive_datagram(d, now, now)
            collect()
        while (e := client.next_event()) is not None:
            if isinstance(e, FrameReady):
                presented.append((e.frame.frame_id, now))
        while (he := host.next_event()) is not None:
            if isinstance(he, ClientTransportEvent) and isinstance(he.event, KeyframeRequested):
                force_key = True
                key_requests.append(round(now - start, 3))
    assert alias is not None and client.transport is not None
    lat = {fid: t - frames[fid] for fid, t in presented if fid in frames}
    p50 = statistics.median(lat.values())
    deadline = (ref_s if ref_s else p50) + 1 / 60
    times = sorted([start, *(t for _, t in presented), end])
    hs = host.sessions[alias].transport.stats
    return {
        "loss": loss,
        "schemes": schemes,
        "fec": fec,
        "on_time": round(sum(1 for x in lat.values() if x <= deadline) / len(frames), 4),
        "overhead_pct": round((wire - media) / media * 100, 1),
        "p50_ms": round(p50 * 1000, 2),
        "p95_ms": round(sorted(lat.values())[int(0.95 * len(lat))] * 1000, 2),
        "max_gap_ms": round(max(b - a for a, b in itertools.pairwise(times)) * 1000),
        "frames": len(frames),
        "late": sum(1 for x in lat.values() if x > deadline),
        "missing": len(frames) - len(lat),
        "parity": hs.parity_sent,
        "resent": hs.retransmitted,
        "recovered": client.transport.stats.fec_recovered,
        # when each late frame was captured (s from the start) and its latency (ms)
        "late_frames": [
            [round(frames[f] - start, 3), round(x * 1000, 1)]
            for f, x in sorted(lat.items())
            if x > deadline
        ],
        "keyframe_requests": key_requests,
    }


def main(argv: list[str]) -> None:
    tune: dict[str, float | int] = {
        k: int(v) if v.lstrip("-").isdigit() else float(v)
        for k, v in (kv.split("=") for kv in os.environ.get("TUNE", "").split(",") if kv)
    }
    if target := os.environ.get("TARGET"):
        tune["frame_target"] = float(target)
    if tune:
        sender_module.RedundancyTunables = functools.partial(  # type: ignore[misc]
            sender_module.RedundancyTunables, **tune
        )
    if cost := os.environ.get("COST"):  # an unrepaired frame's cost, fixed (else the sender's)
        policy = sender_module.RedundancyPolicy
        setter = policy.set_failure_cost
        policy.set_failure_cost = lambda self, _frames: setter(self, float(cost))  # type: ignore[method-assign]
    loss, variant = argv[0], argv[1]
    seconds = float(argv[2]) if len(argv) > 2 else 12.0
    seed = int(argv[3]) if len(argv) > 3 else 1
    ref = float(argv[4]) / 1000 if len(argv) > 4 else None
    kw: dict[str, Any] = {"rs": {}, "xor": {"schemes": (0,)}, "none": {"fec": False}}[variant]
    print(json.dumps(run(loss, seconds=seconds, seed=seed, ref_s=ref, **kw)))


if __name__ == "__main__":
    main(sys.argv[1:])
