"""`wavry bench net`'s metrics: per-run figures (on-time frames, latency, repair, goodput) and
timelines computed from the host's and client's logs (the running is in wavry.bench.net)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from wavry.percentile import percentile

if TYPE_CHECKING:
    from wavry.bench.net import Scenario

__all__ = ["compute_metrics", "datagram_delays", "pct", "rnd", "timeline"]

FRAME_INTERVAL_MS = 1000 / 60
FREEZE_GAP_S = 0.1
#: tbf counts whole frames on the veth: RIFT datagram + UDP 8 + IPv4 20 + Ethernet 14
L2_OVERHEAD = 42
CONVERGE_UTIL = 0.8
CONVERGE_QUEUE_MS = 20.0
CONVERGE_WINDOW_S = 1.0
STEADY_AFTER_S = 3.0


def pct(values: list[float], q: float) -> float | None:
    return percentile(values, q)


def rnd(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def datagram_delays(host: dict[str, Any], client: dict[str, Any]) -> list[tuple[float, float]]:
    """(arrival time, one-way delay s) of every datagram sent exactly once."""
    sends: dict[int, float] = {}
    dup: set[int] = set()
    for pid, t, _ in host["sent"]:
        if pid in sends:
            dup.add(pid)
        sends[pid] = t
    out = []
    seen: set[int] = set()
    for pid, t, _ in client["arrivals"]:
        if pid in dup or pid in seen or pid not in sends:
            continue
        seen.add(pid)
        out.append((t, t - sends[pid]))
    return out


def _window_stats(
    arrivals: list[tuple[float, int]],
    qd: list[tuple[float, float]],
    t0: float,
    t1: float,
    cap_kbps: float,
) -> tuple[float, float | None]:
    bits = sum((n + L2_OVERHEAD) * 8 for t, n in arrivals if t0 <= t < t1)
    util = bits / (cap_kbps * 1000 * (t1 - t0)) if t1 > t0 else 0.0
    q = [d for t, d in qd if t0 <= t < t1]
    return util, pct(q, 0.95)


def compute_metrics(
    scenario: Scenario, variant: str, run: dict[str, Any], ref_p50_ms: float | None
) -> dict[str, Any]:
    host, client = run["host"], run["client"]
    start, end = host["start"], host["end"]
    duration = max(1e-9, end - start)
    sent = host["frames"]
    presented = client["frames"]
    lat = [(t - ts) * 1000 for _, ts, t, _ in presented]
    base = scenario.base_owd_ms
    deadline = None if ref_p50_ms is None else ref_p50_ms + base + FRAME_INTERVAL_MS
    on_time = None
    if deadline is not None and sent:
        on_time = sum(1 for x in lat if x <= deadline) / len(sent)
    # the stream's start and end count as presentation boundaries: a run that shows nothing
    # for 2 s at the start or end froze too
    times = [start, *sorted(t for _, _, t, _ in presented), end]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    freezes = sum(1 for g in gaps if g > FREEZE_GAP_S)
    media = host["media_bytes"]
    overhead = (host["wire_bytes"] - media) / media * 100 if media else None
    delays = datagram_delays(host, client)
    owd_min = min((d for _, d in delays), default=0.0)
    qd = [(t, (d - owd_min) * 1000) for t, d in delays]
    arrivals = [(t, n) for _, t, n in client["arrivals"]]

    utilization = convergence = None
    conv_steps: list[float | None] = []
    queue_p95 = pct([d for _, d in qd], 0.95)
    steady_util: list[tuple[float, float]] = []  # (seconds, utilization)
    if scenario.kind == "netns" and run["steps"]:
        changes = [*run["steps"], end]
        steady_q: list[float] = []
        for i, cap in enumerate(run["capacity"]):
            s0, s1 = changes[i], changes[i + 1]
            conv = None
            t = s0
            while t + CONVERGE_WINDOW_S <= s1 + 1e-9:
                u, q95 = _window_stats(arrivals, qd, t, t + CONVERGE_WINDOW_S, cap)
                if u >= CONVERGE_UTIL and q95 is not None and q95 <= CONVERGE_QUEUE_MS:
                    conv = t - s0
                    break
                t += 0.1
            conv_steps.append(rnd(conv, 2))
            a = min(s1, s0 + STEADY_AFTER_S)
            u, _ = _window_stats(arrivals, qd, a, s1, cap)
            steady_util.append((s1 - a, u))
            steady_q.extend(d for tt, d in qd if a <= tt < s1)
        total = sum(w for w, _ in steady_util)
        utilization = sum(w * u for w, u in steady_util) / total if total > 0 else None
        queue_p95 = pct(steady_q, 0.95)
        convergence = (
            None if not conv_steps or any(c is None for c in conv_steps) else max(conv_steps)  # type: ignore[type-var]
        )
    jb = client.get("jitter_target_ms") or [0.0]
    hs, cs = host.get("stats", {}), client.get("stats", {})
    frame_lat_min = min(lat) if lat else 0.0
    return {
        "scenario": scenario.name,
        "variant": variant,
        "on_time_ratio": rnd(on_time, 4),
        "freezes_per_min": rnd(freezes / duration * 60, 2),
        "overhead_pct": rnd(overhead, 2),
        "latency_ms": {
            "p50": rnd(pct(lat, 0.5), 2),
            "p95": rnd(pct(lat, 0.95), 2),
            "p99": rnd(pct(lat, 0.99), 2),
        },
        "queue_delay_ms_p95": rnd(queue_p95, 2),
        "utilization": rnd(utilization, 3),
        "convergence_s": convergence,
        # extra figures
        "convergence_steps_s": conv_steps if scenario.kind == "netns" else None,
        "on_time_deadline_ms": rnd(deadline, 2),
        "frames_sent": len(sent),
        "frames_presented": len(presented),
        "freezes": freezes,
        "max_gap_ms": rnd(max(gaps) * 1000 if gaps else None, 1),
        "frame_queue_delay_ms_p95": rnd(pct([x - frame_lat_min for x in lat], 0.95), 2),
        "jitter_buffer_ms": rnd(jb[-1], 2),
        "jitter_buffer_ms_max": rnd(max(jb), 2),
        "transport_added_latency_ms_p50": rnd(pct(client.get("hold_ms", []), 0.5), 3),
        "media_mbit_s": rnd(media * 8 / duration / 1e6, 3),
        "fec_recovered": cs.get("fec_recovered"),
        "nacked_ids": cs.get("nacked_ids"),
        "retransmits": hs.get("retransmitted"),
        "parity_sent": hs.get("parity_sent"),
        "frames_dropped_sender": hs.get("frames_dropped_sender"),
        "udp_rcvbuf_errors_system": run.get("rcvbuf_errors"),
        "datagrams_sent": hs.get("datagrams_sent"),
        "keyframe_requests": host.get("keyframe_requests"),
        "skip_requests": host.get("skip_requests"),
        "gso_calls": host.get("gso_calls"),
        "duration_s": rnd(duration, 2),
    }


def timeline(run: dict[str, Any], bin_s: float = 0.25) -> dict[str, list[float | None]]:
    host, client = run["host"], run["client"]
    start, end = host["start"], host["end"]
    nb = max(1, int((end - start) / bin_s) + 1)
    bits = [0.0] * nb
    for _, t, n in client["arrivals"]:
        i = int((t - start) / bin_s)
        if 0 <= i < nb:
            bits[i] += n * 8
    delays = datagram_delays(host, client)
    owd_min = min((d for _, d in delays), default=0.0)
    qbins: list[list[float]] = [[] for _ in range(nb)]
    for t, d in delays:
        i = int((t - start) / bin_s)
        if 0 <= i < nb:
            qbins[i].append((d - owd_min) * 1000)
    cap: list[float | None] = [None] * nb
    if run["capacity"]:
        changes = run["steps"]
        for i in range(nb):
            t = start + i * bin_s
            k = max(j for j, c in enumerate(changes) if c <= t + 1e-9) if t >= changes[0] else 0
            cap[i] = run["capacity"][k] / 1000
    return {
        "t": [i * bin_s for i in range(nb)],
        "mbit_s": [b / bin_s / 1e6 for b in bits],
        "queue_ms_p95": [pct(q, 0.95) for q in qbins],
        "capacity_mbit_s": cap,
    }
