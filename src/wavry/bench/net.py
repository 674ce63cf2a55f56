"""`wavry bench net`: synthetic video through the real RIFT session code over bad networks.

Every scenario streams 60 fps synthetic frames (P-frames ≈ bitrate/fps ± 20 %, keyframes 8× every
2 s and on KeyframeRequested, following RateChanged and SkipFramesRequested) host → client with
HostServer / ClientConnection over real UDP sockets. Delay, jitter and loss come from the
userspace ImpairmentProxy on loopback (host, proxy and client in one event loop); bottlenecks from
a kernel tbf between two network namespaces (host and client as separate processes). Baselines run
in the same invocation: `xor` (the interleaved XOR code of RIFT §7.1 instead of Reed–Solomon,
same redundancy policy) and `no-repair` (FEC and NACK off) for the loss scenarios,
`fixed-bitrate` (DELTA off, 20 Mbit/s) for the bottleneck ones. Definitions of every figure:
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wavry.bench.net_worker import Variant
from wavry.bench.netlab import ImpairmentProxy, LinkConfig, gilbert_elliott
from wavry.bench.report import machine_facts, print_table
from wavry.percentile import percentile

FRAME_INTERVAL_MS = 1000 / 60
FREEZE_GAP_S = 0.1
#: tbf queue in time at the configured rate (a typical home-router buffer)
TBF_QUEUE_MS = 100.0
#: tbf counts whole frames on the veth: RIFT datagram + UDP 8 + IPv4 20 + Ethernet 14
L2_OVERHEAD = 42
CONVERGE_UTIL = 0.8
CONVERGE_QUEUE_MS = 20.0
CONVERGE_WINDOW_S = 1.0
STEADY_AFTER_S = 3.0
NETNS_PORT = 47999


@dataclass(slots=True)
class Scenario:
    name: str
    kind: str  # "proxy" | "netns"
    variants: list[str]
    base_owd_ms: float = 0.0  # configured one-way propagation delay (media direction)
    link: dict[str, Any] = field(default_factory=dict)  # LinkConfig fields, both directions
    steps_kbps: list[float] = field(default_factory=list)  # netns: capacity per segment


SCENARIOS: list[Scenario] = [
    Scenario("clean", "proxy", ["wavry"]),
    Scenario(
        "loss-1pct", "proxy", ["wavry", "xor", "no-repair"], 10.0, {"delay_ms": 10.0, "loss": 0.01}
    ),
    Scenario(
        "loss-2pct", "proxy", ["wavry", "xor", "no-repair"], 10.0, {"delay_ms": 10.0, "loss": 0.02}
    ),
    Scenario(
        "burst-3pct",
        "proxy",
        ["wavry", "xor", "no-repair"],
        10.0,
        {"delay_ms": 10.0, "burst": gilbert_elliott(0.03, 3.0)},
    ),
    Scenario("jitter", "proxy", ["wavry"], 10.0, {"delay_ms": 10.0, "jitter_ms": 2.5}),
    Scenario("bottleneck-8mbit", "netns", ["wavry", "fixed-bitrate"], steps_kbps=[8000.0]),
    Scenario(
        "capacity-steps",
        "netns",
        ["wavry", "fixed-bitrate"],
        steps_kbps=[8000.0, 4000.0, 12000.0],
    ),
]


def make_variant(name: str, scenario: Scenario) -> Variant:
    bottleneck = scenario.kind == "netns"
    if name == "wavry":
        return Variant("wavry", ceiling_kbps=20000 if bottleneck else 8000)
    if name == "xor":  # the same policy with the interleaved XOR code (a peer without RS)
        return Variant("xor", ceiling_kbps=8000, fec_schemes=[0])
    if name == "no-repair":
        return Variant("no-repair", fec=False, nack=False)
    if name == "fixed-bitrate":
        return Variant(
            "fixed-bitrate", congestion_control=False, initial_kbps=20000, ceiling_kbps=20000
        )
    raise ValueError(f"unknown variant {name!r}")


# ---- running -------------------------------------------------------------------------------


async def _run_proxy(scenario: Scenario, v: Variant, duration: float, seed: int) -> dict[str, Any]:
    """Host and client as worker processes on loopback, the proxy in this process's loop.

    Separate processes keep one role's work (e.g. decrypting a keyframe) from delaying another's
    timers, as on real machines; the proxy has a core's worth of loop to itself too.
    """
    with tempfile.TemporaryDirectory(prefix="wavry-bench-net-") as tmp:
        hfile, cfile = os.path.join(tmp, "host.json"), os.path.join(tmp, "client.json")
        common = ["--variant", json.dumps(asdict(v)), "--seed", str(seed)]
        common += ["--duration", str(duration)]
        worker = [sys.executable, "-m", "wavry.bench.net_worker"]
        host = await asyncio.create_subprocess_exec(
            *worker,
            "host",
            "--listen",
            "127.0.0.1",
            *common,
            "--out",
            hfile,
            stdout=asyncio.subprocess.PIPE,
        )
        client = None
        proxy = None
        try:
            port = int(await _aread_line(host, "READY", 20))
            link = LinkConfig(**scenario.link)
            proxy = ImpairmentProxy(("127.0.0.1", 0), ("127.0.0.1", port), link, link, seed=seed)
            await proxy.start()
            paddr = proxy.address
            client = await asyncio.create_subprocess_exec(
                *worker,
                "client",
                "--connect",
                paddr[0],
                "--port",
                str(paddr[1]),
                *common,
                "--out",
                cfile,
                stdout=asyncio.subprocess.DEVNULL,
            )
            await _aread_line(host, "START", 30)
            rc_h = await asyncio.wait_for(host.wait(), duration + 30)
            rc_c = await asyncio.wait_for(client.wait(), 30)
            if rc_h or rc_c:
                raise RuntimeError(f"worker failed (host {rc_h}, client {rc_c})")
        finally:
            for proc in (host, client):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            if proxy is not None:
                await proxy.close()
        with open(hfile) as fh:
            hlog = json.load(fh)
        with open(cfile) as fh:
            clog = json.load(fh)
    return {"host": hlog, "client": clog, "steps": [], "capacity": []}


async def _aread_line(proc: asyncio.subprocess.Process, prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        line = (await asyncio.wait_for(proc.stdout.readline(), left)).decode()
        if not line:
            break
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"worker did not say {prefix!r} in {timeout:.0f} s")


async def _raw_owd_ms(samples: int = 200) -> float:
    """Median one-way time of a bare 1200-byte datagram through a transparent proxy."""
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[float] = asyncio.Queue()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            got.put_nowait(time.time() - float(data[:20].decode()))

    rx, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    target = rx.get_extra_info("sockname")
    out: list[float] = []
    async with ImpairmentProxy(("127.0.0.1", 0), target, seed=0) as proxy:
        tx, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=proxy.address
        )
        for _ in range(samples):
            tx.sendto(f"{time.time():20.6f}".encode() + bytes(1180))
            with contextlib.suppress(TimeoutError):
                out.append(await asyncio.wait_for(got.get(), 0.5))
            await asyncio.sleep(0.002)
        tx.close()
    rx.close()
    return statistics.median(out) * 1000 if out else 0.0


def _read_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"worker did not say {prefix.strip()!r} in {timeout:.0f} s")


def _run_netns(scenario: Scenario, v: Variant, duration: float, seed: int) -> dict[str, Any]:
    from wavry.bench.netlab import NetnsPair, Tbf

    steps = scenario.steps_kbps
    seg = duration / len(steps)
    with tempfile.TemporaryDirectory(prefix="wavry-bench-net-") as tmp:
        hfile, cfile = os.path.join(tmp, "host.json"), os.path.join(tmp, "client.json")
        vjson = json.dumps(asdict(v))
        worker = [sys.executable, "-m", "wavry.bench.net_worker"]
        with NetnsPair(tbf_a=Tbf(rate_kbps=steps[0], latency_ms=TBF_QUEUE_MS)) as pair:
            common = ["--port", str(NETNS_PORT), "--variant", vjson, "--seed", str(seed)]
            common += ["--duration", str(duration)]
            host = pair.popen(
                "a",
                [*worker, "host", "--listen", pair.addr("a"), *common, "--out", hfile],
                stdout=subprocess.PIPE,
                text=True,
            )
            _read_line(host, "READY", 20)
            client = pair.popen(
                "b",
                [*worker, "client", "--connect", pair.addr("a"), *common, "--out", cfile],
                stdout=subprocess.DEVNULL,
            )
            start = float(_read_line(host, "START", 30))
            changes: list[float] = [start]
            for i, kbps in enumerate(steps[1:], start=1):
                time.sleep(max(0.0, start + i * seg - time.time()))
                pair.set_rate("a", kbps)
                changes.append(time.time())
            host.wait(timeout=duration + 30)
            client.wait(timeout=30)
            if host.returncode or client.returncode:
                raise RuntimeError(
                    f"netns worker failed (host {host.returncode}, client {client.returncode})"
                )
        with open(hfile) as fh:
            hlog = json.load(fh)
        with open(cfile) as fh:
            clog = json.load(fh)
    return {"host": hlog, "client": clog, "steps": changes, "capacity": list(steps)}


# ---- metrics -------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    return percentile(values, q)


def _r(x: float | None, nd: int = 3) -> float | None:
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
    return util, _pct(q, 0.95)


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
    queue_p95 = _pct([d for _, d in qd], 0.95)
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
            conv_steps.append(_r(conv, 2))
            a = min(s1, s0 + STEADY_AFTER_S)
            u, _ = _window_stats(arrivals, qd, a, s1, cap)
            steady_util.append((s1 - a, u))
            steady_q.extend(d for tt, d in qd if a <= tt < s1)
        total = sum(w for w, _ in steady_util)
        utilization = sum(w * u for w, u in steady_util) / total if total > 0 else None
        queue_p95 = _pct(steady_q, 0.95)
        convergence = (
            None if not conv_steps or any(c is None for c in conv_steps) else max(conv_steps)  # type: ignore[type-var]
        )
    jb = client.get("jitter_target_ms") or [0.0]
    hs, cs = host.get("stats", {}), client.get("stats", {})
    frame_lat_min = min(lat) if lat else 0.0
    return {
        "scenario": scenario.name,
        "variant": variant,
        "on_time_ratio": _r(on_time, 4),
        "freezes_per_min": _r(freezes / duration * 60, 2),
        "overhead_pct": _r(overhead, 2),
        "latency_ms": {
            "p50": _r(_pct(lat, 0.5), 2),
            "p95": _r(_pct(lat, 0.95), 2),
            "p99": _r(_pct(lat, 0.99), 2),
        },
        "queue_delay_ms_p95": _r(queue_p95, 2),
        "utilization": _r(utilization, 3),
        "convergence_s": convergence,
        # extra figures
        "convergence_steps_s": conv_steps if scenario.kind == "netns" else None,
        "on_time_deadline_ms": _r(deadline, 2),
        "frames_sent": len(sent),
        "frames_presented": len(presented),
        "freezes": freezes,
        "max_gap_ms": _r(max(gaps) * 1000 if gaps else None, 1),
        "frame_queue_delay_ms_p95": _r(_pct([x - frame_lat_min for x in lat], 0.95), 2),
        "jitter_buffer_ms": _r(jb[-1], 2),
        "jitter_buffer_ms_max": _r(max(jb), 2),
        "transport_added_latency_ms_p50": _r(_pct(client.get("hold_ms", []), 0.5), 3),
        "media_mbit_s": _r(media * 8 / duration / 1e6, 3),
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
        "duration_s": _r(duration, 2),
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
        "queue_ms_p95": [_pct(q, 0.95) for q in qbins],
        "capacity_mbit_s": cap,
    }


# ---- command -------------------------------------------------------------------------------


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def run_net_bench(
    quick: bool = False,
    json_file: Path | None = None,
    scenarios: list[str] | None = None,
    duration_s: float | None = None,
    seed: int = 1,
    plots: bool = True,
) -> dict[str, Any]:
    from wavry.bench.netlab import probe
    from wavry.net.loop import run

    dur = duration_s if duration_s is not None else (12.0 if quick else 40.0)
    chosen = [s for s in SCENARIOS if scenarios is None or s.name in scenarios]
    ns_ok, ns_reason = probe() if any(s.kind == "netns" for s in chosen) else (True, "")
    results: list[dict[str, Any]] = []
    timelines: dict[str, Any] = {}
    cdfs: dict[str, list[float]] = {}
    notes: list[str] = []

    raw_owd = run(_raw_owd_ms(100 if quick else 300))
    # the clean path is the reference of "on time": measured first, in the same run
    clean = next((s for s in SCENARIOS if s.name == "clean"), None)
    runs: list[tuple[Scenario, str, dict[str, Any] | None, str | None]] = []
    ref_p50: float | None = None
    order = ([clean] if clean is not None and clean not in chosen else []) + chosen
    for sc in order:
        for vname in sc.variants:
            v = make_variant(vname, sc)
            d = dur * (1.5 if sc.name == "capacity-steps" else 1.0)
            print(f"  running {sc.name} / {vname} ({d:.0f} s)...", flush=True)
            if sc.kind == "netns" and not ns_ok:
                runs.append((sc, vname, None, f"skipped: {ns_reason}"))
                continue
            rcvbuf0 = _udp_rcvbuf_errors()
            try:
                if sc.kind == "proxy":
                    r = run(_run_proxy(sc, v, d, seed))
                else:
                    r = _run_netns(sc, v, d, seed)
            except Exception as exc:  # a failed scenario is reported, the rest still runs
                runs.append((sc, vname, None, f"failed: {exc}"))
                continue
            rcvbuf1 = _udp_rcvbuf_errors()
            if rcvbuf0 is not None and rcvbuf1 is not None:
                r["rcvbuf_errors"] = rcvbuf1 - rcvbuf0
            if sc.name == "clean" and vname == "wavry":
                lat = [(t - ts) * 1000 for _, ts, t, _ in r["client"]["frames"]]
                ref_p50 = _pct(lat, 0.5)
            if sc in chosen:
                runs.append((sc, vname, r, None))
    for sc, vname, got, note in runs:
        if got is None:
            results.append(_empty(sc.name, vname, note))
            notes.append(f"{sc.name}/{vname}: {note}")
            continue
        r = got
        m = compute_metrics(sc, vname, r, ref_p50)
        if sc.name == "clean" and m["latency_ms"]["p50"] is not None:
            m["latency_over_raw_path_ms_p50"] = _r(m["latency_ms"]["p50"] - raw_owd, 3)
        results.append(m)
        key = f"{sc.name}/{vname}"
        timelines[key] = timeline(r)
        cdfs[key] = sorted((t - ts) * 1000 for _, ts, t, _ in r["client"]["frames"])

    rows = [
        [
            m["scenario"],
            m["variant"],
            _fmt(m["on_time_ratio"], ".4f"),
            _fmt(m["freezes_per_min"], ".1f"),
            _fmt(m["overhead_pct"], ".1f"),
            _fmt(m["latency_ms"]["p50"], ".1f"),
            _fmt(m["latency_ms"]["p95"], ".1f"),
            _fmt(m["latency_ms"]["p99"], ".1f"),
            _fmt(m["queue_delay_ms_p95"], ".1f"),
            _fmt(m["utilization"], ".2f"),
            _fmt(m["convergence_s"], ".1f"),
            _fmt(m.get("jitter_buffer_ms"), ".1f"),
        ]
        for m in results
    ]
    ref = _fmt(ref_p50, ".1f")
    header = ["scenario", "variant", "on-time", "frz/min", "ovh%", "p50", "p95", "p99", "qd95"]
    header += ["util", "conv s", "jb ms"]
    print_table(
        f"RIFT over impaired networks ({dur:.0f} s per run; clean-path p50 {ref} ms)", header, rows
    )
    for n in notes:
        print(f"  note: {n}")
    targets = evaluate_targets(results)
    for k, val in targets.items():
        print(f"  target {k}: {'-' if val is None else ('met' if val else 'MISSED')}")
    out: dict[str, Any] = {
        "bench": "net",
        "quick": quick,
        "machine": machine_facts(),
        "duration_s": dur,
        "clean_latency_p50_ms": _r(ref_p50, 3),
        "raw_path_owd_ms": _r(raw_owd, 3),
        "scenarios": results,
        "targets": targets,
        "notes": notes,
    }
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        if plots and timelines:
            from wavry.bench.plots import write_plots

            out["plots"] = write_plots(json_file, timelines, cdfs, results)
        json_file.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {json_file}")
    return out


def _udp_rcvbuf_errors() -> int | None:
    """System-wide UDP receive-buffer drops (this namespace; other processes count too)."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    except OSError:
        return None
    udp = [ln for ln in lines if ln and ln[0] == "Udp:"]
    if len(udp) < 2 or "RcvbufErrors" not in udp[0]:
        return None
    return int(udp[1][udp[0].index("RcvbufErrors")])


def _empty(scenario: str, variant: str, note: str | None) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "variant": variant,
        "on_time_ratio": None,
        "freezes_per_min": None,
        "overhead_pct": None,
        "latency_ms": {"p50": None, "p95": None, "p99": None},
        "queue_delay_ms_p95": None,
        "utilization": None,
        "convergence_s": None,
        "note": note,
    }


def evaluate_targets(results: list[dict[str, Any]]) -> dict[str, bool | None]:
    def get(s: str, v: str = "wavry") -> dict[str, Any] | None:
        return next((m for m in results if m["scenario"] == s and m["variant"] == v), None)

    def ok(m: dict[str, Any] | None, fn: Any) -> bool | None:
        if m is None or (m.get("on_time_ratio") is None and m.get("utilization") is None):
            return None
        try:
            return bool(fn(m))
        except TypeError:
            return None

    t: dict[str, bool | None] = {}
    t["loss_2pct_on_time_ge_99.5"] = ok(get("loss-2pct"), lambda m: m["on_time_ratio"] >= 0.995)
    t["loss_2pct_overhead_le_22"] = ok(get("loss-2pct"), lambda m: m["overhead_pct"] <= 22)
    t["burst_3pct_on_time_ge_99"] = ok(get("burst-3pct"), lambda m: m["on_time_ratio"] >= 0.99)
    t["loss_burst_no_freezes"] = ok(
        get("loss-2pct"),
        lambda m: m["freezes"] == 0 and (get("burst-3pct") or {"freezes": 1})["freezes"] == 0,
    )
    t["clean_overhead_le_6"] = ok(get("clean"), lambda m: m["overhead_pct"] <= 6)
    for sc in ("loss-1pct", "loss-2pct", "burst-3pct"):
        t[f"{sc.replace('-', '_')}_rs_on_time_ge_xor"] = ok(
            get(sc), lambda m, sc=sc: m["on_time_ratio"] >= (get(sc, "xor") or {})["on_time_ratio"]
        )

    def bottleneck(m: dict[str, Any]) -> bool:
        return bool(
            m["queue_delay_ms_p95"] <= CONVERGE_QUEUE_MS
            and m["utilization"] >= CONVERGE_UTIL
            and m["convergence_s"] is not None
            and m["convergence_s"] <= STEADY_AFTER_S
        )

    t["bottleneck_qd95_le_20_util_ge_80_within_3s"] = ok(get("bottleneck-8mbit"), bottleneck)
    # "no worse than before Reed-Solomon": queue p95 ≈ 11 ms at ≈ 0.95 use (docs/benchmarks.md)
    t["bottleneck_qd95_le_13_util_ge_90"] = ok(
        get("bottleneck-8mbit"),
        lambda m: m["queue_delay_ms_p95"] <= 13 and m["utilization"] >= 0.9,
    )
    t["capacity_steps_each_within_3s"] = ok(get("capacity-steps"), bottleneck)
    t["fixed_bitrate_queue_fills"] = ok(
        get("bottleneck-8mbit", "fixed-bitrate"),
        lambda m: m["queue_delay_ms_p95"] > 2 * CONVERGE_QUEUE_MS,
    )
    t["clean_jitter_buffer_0"] = ok(get("clean"), lambda m: m["jitter_buffer_ms_max"] == 0)
    t["clean_transport_added_p50_le_0.5ms"] = ok(
        get("clean"), lambda m: m["transport_added_latency_ms_p50"] <= 0.5
    )
    return t
