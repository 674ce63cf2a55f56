"""``wavry bench relay``: relay forwarding rate and added latency, measured in one run next to
a direct path (no forwarder) and a bare asyncio UDP forwarder.

Every party is its own process with blocking sockets (no event loop in the load path):

- a *sink* (the session's host) timestamps each datagram on arrival;
- a *generator* (the session's client) first paces stamped datagrams at ``--rate`` (sleep with
  1 µs timer slack, then busy-wait the last ``SPIN_NS``), then blasts with ``UDP_SEGMENT``
  (one ``sendmsg`` = up to 64 datagrams) so the generator is not what limits the rate;
- the *forwarder* under test: none (direct), a bare asyncio forwarder, the wavry relay reading
  one datagram per ``recvfrom`` (``gro=False``), and the wavry relay with UDP_GRO in / GSO out.

With two or more CPUs the forwarder is pinned to one core and generator + sink to another, so
"on one core" is literal; the forwarder's own CPU time (``getrusage``) over the blast window
also gives datagrams per CPU-second of the forwarder process. Latency is the sink's
``perf_counter_ns`` at arrival minus the generator's at send (CLOCK_MONOTONIC, one machine);
"added" = forwarder path − direct path, per percentile.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import statistics
import time
import uuid
from array import array
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Annotated, Any

import typer

from wavry.bench.relay_parties import (
    _HDR,
    _STAMP,
    RELAY_ID,
    SLICE_NS,
    Lease,
    _effective_nice,
    _forwarder_main,
    _gen_main,
    _in_child,
    _sink_main,
    set_fair_slice,
)
from wavry.bench.report import machine_facts, print_table
from wavry.percentile import percentile

__all__ = ["bench_relay_command", "run_relay_bench"]

KINDS = ("direct", "baseline", "relay_plain", "relay")
LABELS = {
    "direct": "direct (no forwarder)",
    "baseline": "bare asyncio forwarder",
    "relay_plain": "wavry relay, recvfrom/sendto",
    "relay": "wavry relay, GRO in / GSO out",
}


# --- orchestration -------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    p = percentile(values, q)
    return float("nan") if p is None else p


def _cores() -> tuple[int | None, int | None]:
    """(generator + sink core, forwarder core) when there are two CPUs to use."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


def _measure(
    kind: str,
    pub: bytes,
    leases: dict[str, Any],
    rate: int,
    duration: float,
    size: int,
    pin: bool,
    nice: int,
    shared: bool,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    gen_core, fwd_core = _cores() if pin else (None, None)
    # latency phase: the forwarder on the generator + sink core when `shared` (every wakeup
    # is local), else on its own core; rate phase: always on its own core
    lat_core = gen_core if shared else fwd_core
    procs: list[Any] = []
    fwd_conn: Connection | None = None
    try:
        dest: Any = None
        gro = False
        fwd_pid: int | None = None
        if kind != "direct":
            fwd_conn, child = ctx.Pipe()
            p = ctx.Process(
                target=_forwarder_main, args=(kind, pub, lat_core, nice, child), daemon=True
            )
            p.start()
            procs.append(p)
            if not fwd_conn.poll(30):
                raise RuntimeError(f"{kind} forwarder did not start")
            host, port, gro = fwd_conn.recv()
            dest = (host, port)
            fwd_pid = p.pid
        sid = uuid.uuid4()
        from wavry.relay import wire

        relay = kind.startswith("relay")

        def present(role: wire.Role) -> Lease | None:
            if not relay:
                return None
            token, key = leases[role.claim](sid)
            return wire.encode_lease_present(sid, role, token), token, key

        sink_conn, child = ctx.Pipe()
        p = ctx.Process(
            target=_sink_main,
            args=(dest, present(wire.Role.HOST), gen_core, nice, child),
            daemon=True,
        )
        p.start()
        procs.append(p)
        if not sink_conn.poll(30):
            raise RuntimeError("sink did not start")
        sink_addr = sink_conn.recv()
        prefix = wire.encode_header(wire.PacketType.FORWARD, sid)
        gen_conn, child = ctx.Pipe()
        p = ctx.Process(
            target=_gen_main,
            args=(
                dest,
                sink_addr,
                prefix,
                present(wire.Role.CLIENT),
                rate,
                duration,
                size,
                gen_core,
                nice,
                child,
            ),
            daemon=True,
        )
        p.start()
        procs.append(p)

        def usage() -> tuple[float, int, float] | None:
            if fwd_conn is None:
                return None
            fwd_conn.send("usage")
            if not fwd_conn.poll(10):
                raise RuntimeError(f"{kind} forwarder does not answer")
            got: tuple[float, int, float] = fwd_conn.recv()
            return got

        def expect(what: str) -> None:
            if not gen_conn.poll(duration + 60):
                raise RuntimeError(f"generator stalled before {what!r}")
            msg = gen_conn.recv()
            if msg != what:
                raise RuntimeError(f"generator said {msg!r}, expected {what!r}")

        expect("paced")
        u0 = usage()
        expect("paced-end")
        u1 = usage()
        if fwd_pid is not None and fwd_core is not None and lat_core != fwd_core:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(fwd_pid, {fwd_core})
        expect("blast")
        time.sleep(0.3)  # warm-up: the forwarder's queue fills
        b0 = usage()
        expect("blast-end")
        b1 = usage()
        if not gen_conn.poll(10):
            raise RuntimeError("generator gave no summary")
        gen = gen_conn.recv()
        time.sleep(0.3)
        sink_conn.send("stop")
        if not sink_conn.poll(30):
            raise RuntimeError("sink gave no summary")
        sink = sink_conn.recv()
    finally:
        if fwd_conn is not None:
            with contextlib.suppress(OSError, BrokenPipeError):
                fwd_conn.send("stop")
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
    lat = [x / 1000.0 for x in array("q", sink["latencies_ns"])]
    out: dict[str, Any] = {
        "sent": gen["sent"],
        "received": sink["paced"],
        "late_sends": gen["late"],
        "p50_us": _pct(lat, 0.5),
        "p95_us": _pct(lat, 0.95),
        "p99_us": _pct(lat, 0.99),
        "max_us": max(lat) if lat else float("nan"),
        "_lat": lat,
        "gro": gro,
        "pinned": {
            "generator_sink_core": gen_core,
            "forwarder_core_latency": lat_core,
            "forwarder_core_rate": fwd_core,
        },
    }
    if u0 is not None and u1 is not None and b0 is not None and b1 is not None:
        n_paced = u1[1] - u0[1]
        out["paced_cpu_us_per_datagram"] = (
            (u1[2] - u0[2]) / n_paced * 1e6 if n_paced else float("nan")
        )
        n, wall, cpu = b1[1] - b0[1], b1[0] - b0[0], b1[2] - b0[2]
        out.update(
            {
                "blast_sent": gen["blast_sent"],
                "blast_received": sink["blast"],
                "generator_gso": gen["gso"],
                "window_s": round(wall, 3),
                "window_forwarded": n,
                "forward_rate": n / wall if wall > 0 else float("nan"),
                "cpu_s": round(cpu, 3),
                "cpu_share": cpu / wall if wall > 0 else float("nan"),
                "per_cpu_second": n / cpu if cpu > 0 else float("nan"),
                "cpu_us_per_datagram": cpu / n * 1e6 if n else float("nan"),
            }
        )
    return out


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One path over several rounds: latency percentiles over all samples pooled, rates the
    median round (every round's figures kept under ``rounds``)."""
    lat = [x for r in runs for x in r.pop("_lat")]
    out = dict(runs[len(runs) // 2])
    for key in ("sent", "received", "late_sends"):
        out[key] = sum(r[key] for r in runs)
    out.update(
        {
            "p50_us": _pct(lat, 0.5),
            "p95_us": _pct(lat, 0.95),
            "p99_us": _pct(lat, 0.99),
            "max_us": max(lat) if lat else float("nan"),
        }
    )
    for key in ("forward_rate", "per_cpu_second", "cpu_us_per_datagram", "cpu_share"):
        if key in runs[0]:
            out[key] = statistics.median(r[key] for r in runs)
    out["rounds"] = [
        {k: v for k, v in r.items() if k not in ("pinned", "gro", "generator_gso")} for r in runs
    ]
    return out


def _bench(
    rate: int, duration: float, size: int, pin: bool, nice: int, shared: bool, rounds: int = 3
) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    from wavry.controlplane.lease import LeaseSigner, generate_private_key

    key = generate_private_key()
    signer = LeaseSigner(key)
    from wavry.rift.identity import Identity

    leases: dict[str, Any] = {}
    for role in ("client", "host"):
        device = Identity.generate()
        leases[role] = lambda sid, role=role, device=device: (
            signer.mint(device.wavry_id, sid, role, RELAY_ID, slimit_kbps=10**7, hlimit_kbps=10**8),
            device.private_bytes(),
        )
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    results: dict[str, Any] = {
        "rate": rate,
        "duration_s": duration,
        "datagram_bytes": size,
        "nice": nice,
        "sched_slice_us": SLICE_NS / 1000
        if _in_child(lambda: set_fair_slice(SLICE_NS, nice))
        else None,
        "latency_placement": "shared" if shared else "split",
        "rounds": rounds,
    }
    # every round measures every path, in a rotated order, so that load from elsewhere on a
    # shared machine spreads over all paths instead of landing on one
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for r in range(rounds):
        for i in range(len(KINDS)):
            kind = KINDS[(i + r) % len(KINDS)]
            runs[kind].append(_measure(kind, pub, leases, rate, duration, size, pin, nice, shared))
    for kind in KINDS:
        results[kind] = _merge(runs[kind])
    direct = results["direct"]
    for kind in KINDS[1:]:
        x = results[kind]
        for q in ("p50", "p95", "p99"):
            x[f"added_{q}_us"] = x[f"{q}_us"] - direct[f"{q}_us"]
    # kept for older readers of the JSON
    results["added_p50_us"] = results["relay"]["added_p50_us"]
    results["added_p99_us"] = results["relay"]["added_p99_us"]
    relay = results["relay"]
    results["targets"] = {
        "rate_50k_one_core": relay["forward_rate"] >= 50_000 and relay["per_cpu_second"] >= 50_000,
        "added_p99_le_500us": relay["added_p99_us"] <= 500,
    }
    return results


def run_relay_bench(
    rate: int = 10_000,
    duration: float = 1.0,
    size: int = 1200,
    pin: bool = True,
    nice: int = -10,
    placement: str = "shared",
    rounds: int = 3,
) -> dict[str, Any]:
    before = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = _bench(
        rate, duration, size, pin, _effective_nice(nice), placement == "shared", rounds
    )
    after = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"machine": machine_facts(), "loadavg_before_after": [before, after], "results": results}


def _f(x: float, fmt: str = ",.0f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def bench_relay_command(
    rate: Annotated[
        int, typer.Option(help="Paced rate for the latency run (datagrams/s).")
    ] = 10_000,
    duration: Annotated[float, typer.Option(help="Seconds per phase and round.")] = 1.0,
    rounds: Annotated[
        int, typer.Option(help="Rounds; each measures every path (order rotated).")
    ] = 3,
    size: Annotated[
        int, typer.Option(help="Datagram size in bytes (relay header included).")
    ] = 1200,
    pin: Annotated[
        bool, typer.Option(help="Pin the forwarder to one core, generator + sink to another.")
    ] = True,
    nice: Annotated[
        int,
        typer.Option(
            help="Niceness of every bench process alike (negative needs CAP_SYS_NICE; else 0)."
        ),
    ] = -10,
    placement: Annotated[
        str,
        typer.Option(
            help="Latency phase: 'shared' = forwarder on the generator + sink core (local "
            "wakeups), 'split' = on its own core (cross-CPU wakeups). The rate phase always "
            "gives the forwarder its own core."
        ),
    ] = "shared",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Relay forwarding rate and added latency vs. a direct path and a bare asyncio forwarder."""
    lo = _HDR + _STAMP.size
    problem = ""
    if not lo <= size <= 65000:
        problem = f"--size must be {lo}..65000"
    elif placement not in ("shared", "split"):
        problem = "--placement must be shared or split"
    elif rounds < 1:
        problem = "--rounds must be >= 1"
    if problem:
        typer.echo(f"wavry bench relay: error: {problem}", err=True)
        raise typer.Exit(2)
    report = run_relay_bench(rate, duration, size, pin, nice, placement, rounds)
    r = report["results"]
    rows = []
    for kind in KINDS:
        x = r[kind]
        rows.append(
            [
                LABELS[kind],
                _f(x.get("forward_rate", float("nan"))),
                _f(x.get("per_cpu_second", float("nan"))),
                _f(x.get("cpu_us_per_datagram", float("nan")), ".2f"),
                f"{x['received']}/{x['sent']}",
                _f(x["p50_us"]),
                _f(x["p95_us"]),
                _f(x["p99_us"]),
                "" if kind == "direct" else f"{_f(x['added_p50_us'])} / {_f(x['added_p99_us'])}",
            ]
        )
    pinned = r["relay"]["pinned"]
    where = (
        f"generator + sink on cpu {pinned['generator_sink_core']}, forwarder on cpu "
        f"{pinned['forwarder_core_latency']} (latency) / {pinned['forwarder_core_rate']} (rate)"
        if pinned["forwarder_core_rate"] is not None
        else "not pinned"
    ) + f", nice {r['nice']}"
    print_table(
        f"relay bench ({size} B datagrams, paced {rate}/s, {rounds} × {duration:g} s per phase, "
        f"loopback, one session; {where})",
        [
            "path",
            "max fwd/s",
            "fwd per CPU-s",
            "CPU µs/dgram",
            "paced rcvd/sent",
            "p50 µs",
            "p95 µs",
            "p99 µs",
            "added p50/p99 µs",
        ],
        rows,
    )
    t = r["targets"]
    print(
        f"targets: ≥ 50 000/s on one core: {'met' if t['rate_50k_one_core'] else 'MISSED'}; "
        f"p99 added ≤ 500 µs at {rate}/s: {'met' if t['added_p99_le_500us'] else 'MISSED'}"
    )
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_out}")
