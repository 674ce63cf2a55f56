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

from wavry.bench.net_metrics import (
    CONVERGE_QUEUE_MS,
    CONVERGE_UTIL,
    STEADY_AFTER_S,
    compute_metrics,
    pct,
    rnd,
    timeline,
)
from wavry.bench.net_worker import Variant
from wavry.bench.netlab import ImpairmentProxy, LinkConfig, gilbert_elliott
from wavry.bench.report import machine_facts, print_table

#: tbf queue in time at the configured rate (a typical home-router buffer)
TBF_QUEUE_MS = 100.0
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
                ref_p50 = pct(lat, 0.5)
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
            m["latency_over_raw_path_ms_p50"] = rnd(m["latency_ms"]["p50"] - raw_owd, 3)
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
        "clean_latency_p50_ms": rnd(ref_p50, 3),
        "raw_path_owd_ms": rnd(raw_owd, 3),
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
