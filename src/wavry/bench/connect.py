"""`wavry bench connect`: how long `wavry connect NAME` takes to show the first frame, on the NAT
bed (:mod:`wavry.bench.netlab.natbed`), for each path — LAN (no NAT between the peers), punched
(two port-restricted routers) and relayed (the routers cannot reach each other) — next to the
bare RIFT handshake on that same path in the same run; and the longest presentation gap while a
relayed session moves to a direct path.

Everything runs for real: `wavry gateway` and `wavry relay` in the bed's internet, `wavry host
--gateway URL --name bench --source synthetic` behind router A, and one `wavry connect bench
--headless --stats-json` process per run, behind router B (punched, relayed) or on the host's
LAN (LAN). Times come from the client's own statistics: ``time_to_first_frame_ms`` (from the
start of `wavry connect`, name lookup included, to the first decoded frame) and the winning
path's ``handshake_ms`` (its first msg1 to msg2). The process start (Python imports) is reported
apart. Targets (p50): LAN ≤ 300 ms, punched ≤ 800 ms, relayed ≤ 2000 ms; migration gap ≤ 100 ms.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.bench.netlab.natbed import SERVICES, NatBed, NatType, Site, probe
from wavry.bench.netlab.services import Service, start_gateway, start_relay, wait_ready
from wavry.bench.report import machine_facts, print_table
from wavry.percentile import percentile

__all__ = ["TARGETS_MS", "run_connect_bench"]

URL = f"http://{SERVICES}:3000"
PASSWORD = "bench connect passphrase"
TARGETS_MS = {"lan": 300.0, "punched": 800.0, "relayed": 2000.0}
GAP_TARGET_MS = 100.0
FPS = 30


class BenchError(RuntimeError):
    pass


@dataclass
class PathRuns:
    path: str
    ttff_ms: list[float] = field(default_factory=list)
    handshake_ms: list[float] = field(default_factory=list)
    process_ms: list[float] = field(default_factory=list)
    seen_paths: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float | None]:
            return {
                "p50": _r(percentile(values, 0.5)),
                "p95": _r(percentile(values, 0.95)),
                "min": _r(min(values, default=None)),
            }

        p50 = percentile(self.ttff_ms, 0.5)
        target = TARGETS_MS[self.path]
        return {
            "path": self.path,
            "runs": len(self.ttff_ms),
            "failures": self.failures,
            "paths_reported": sorted(set(self.seen_paths)),
            "time_to_first_frame_ms": stats(self.ttff_ms),
            "handshake_ms": stats(self.handshake_ms),
            "process_to_exit_ms": stats(self.process_ms),
            "target_p50_ms": target,
            "met": p50 is not None and p50 <= target,
        }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


class _Bench:
    def __init__(self, bed: NatBed, home: Path) -> None:
        self.bed = bed
        self.home = home
        self.count = 0

    def env(self, site: Site) -> dict[str, str]:
        return {**os.environ, "XDG_CONFIG_HOME": str(self.home / site), "WAVRY_PASSWORD": PASSWORD}

    def wavry(self, site: Site, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "wavry", *args]
        r = self.bed.run(site, argv, env=self.env(site))
        if r.returncode != 0:
            raise BenchError(f"wavry {' '.join(args[:2])} in {site}: {r.stderr.strip()}")
        return r

    def start_host(self) -> Service:
        argv = [
            sys.executable, "-m", "wavry", "host", "--gateway", URL, "--name", "bench",
            "--source", "synthetic", "--size", "640x360", "--fps", str(FPS), "--no-upnp",
        ]  # fmt: skip
        proc = self.bed.popen("host", argv, env=self.env("host"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
        host = Service(proc)
        host.wait_for(r"online at .* as 'bench'", timeout=60)
        return host

    def connect(self, site: Site, seconds: float, stats: Path) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "wavry", "connect", "bench", "--gateway", URL, "--headless",
                "--seconds", f"{seconds:g}", "--stats-json", str(stats), "--no-live-stats",
                "--no-audio"]  # fmt: skip
        return self.bed.popen(site, argv, env=self.env(site), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip

    def one(self, site: Site, runs: PathRuns, seconds: float = 0.5) -> dict[str, Any] | None:
        self.count += 1
        stats = self.home / f"stats-{self.count:03d}-{runs.path}.json"
        started = time.monotonic()
        proc = self.connect(site, seconds, stats)
        _out, err = proc.communicate(timeout=60)
        took = (time.monotonic() - started) * 1000
        if proc.returncode != 0 or not stats.exists():
            runs.failures.append(err.strip().splitlines()[-1] if err.strip() else "no stats")
            return None
        data: dict[str, Any] = json.loads(stats.read_text())
        ttff = data.get("time_to_first_frame_ms")
        changes = data.get("path_changes") or []
        if ttff is None or not changes:
            runs.failures.append("no frame")
            return data
        runs.ttff_ms.append(float(ttff))
        runs.process_ms.append(took)
        runs.seen_paths.append(str(data.get("path")))
        hs = changes[0].get("handshake_ms")
        if hs is not None:
            runs.handshake_ms.append(float(hs))
        return data


def _migration(b: _Bench, host: Service, index: int) -> dict[str, Any]:
    """Relayed first (the routers cut), then the cut lifted: when does the session move, and
    what is the longest time between two presented frames around the move, next to the same
    measure in the seconds before it (what this session shows anyway on this machine)."""
    b.bed.cut_direct(True)
    stats = b.home / f"stats-migration-{index}.json"
    seconds = 16.0
    mark = host.mark()
    proc = b.connect("client", seconds, stats)
    # the host hears the handshake through the relay; then 2 s of a steady relayed session
    host.wait_for(rf"handshake from .* at {re.escape(SERVICES)}:4000", timeout=30, since=mark)
    time.sleep(2.5)
    opened = time.monotonic()
    b.bed.cut_direct(False)
    _out, err = proc.communicate(timeout=seconds + 60)
    if proc.returncode != 0 or not stats.exists():
        return {"error": err.strip()[-300:]}
    data = json.loads(stats.read_text())
    changes = data.get("path_changes") or []
    moved = next((c for c in changes[1:] if c["path"] != "relayed"), None)
    return {
        "paths": [c["path"] for c in changes],
        "moved_after_opening_ms": _r((moved["monotonic_s"] - opened) * 1000) if moved else None,
        "gap_around_move_ms": moved.get("gap_ms") if moved else None,
        "gap_before_move_ms": moved.get("gap_before_ms") if moved else None,
        "longest_gap_whole_session_ms": data.get("longest_present_gap_ms"),
        "frames_presented": data.get("frames_presented"),
    }


def _migrations(b: _Bench, host: Service, count: int) -> dict[str, Any]:
    runs = [_migration(b, host, i) for i in range(count)]
    gaps = [r["gap_around_move_ms"] for r in runs if r.get("gap_around_move_ms") is not None]
    worst = max(gaps, default=None)
    return {
        "runs": runs,
        "worst_gap_around_move_ms": worst,
        "target_gap_ms": GAP_TARGET_MS,
        "met": worst is not None and len(gaps) == len(runs) and worst <= GAP_TARGET_MS,
    }


def run_connect_bench(runs: int = 10, quick: bool = False) -> dict[str, Any]:
    ok, why = probe()
    if not ok:
        raise BenchError(f"the NAT bed cannot run here: {why}")
    runs = 3 if quick else max(1, runs)
    home = Path(tempfile.mkdtemp(prefix="wavry-bench-connect-"))
    results: dict[str, Any] = {"machine": machine_facts(), "runs_per_path": runs}
    with NatBed(NatType.port_restricted, NatType.port_restricted, lan_client=True) as bed:
        b = _Bench(bed, home)
        gw = start_gateway(home / "gw", SERVICES, 3000, netns=bed.ns["inet"])
        relay = None
        host = None
        try:
            wait_ready(URL, bed.ns["inet"])
            relay = start_relay(URL, SERVICES, 4000, netns=bed.ns["inet"])
            b.wavry("host", "register", URL, "--username", "bench", "--email", "b@example.org")
            for site in ("client", "lan"):
                b.wavry(site, "login", URL, "--login", "bench")
            host = b.start_host()
            plan: list[tuple[str, Site, bool]] = [
                ("lan", "lan", False),
                ("punched", "client", False),
                ("relayed", "client", True),
            ]
            per_path = {path: PathRuns(path) for path, _, _ in plan}
            # rounds of one run per path: the machine's load falls on every path alike; the
            # first round warms the host (its encoder, the gateway's caches) and is not counted
            for round_ in range(runs + 1):
                for path, site, cut in plan:
                    bed.cut_direct(cut)
                    b.one(site, per_path[path] if round_ else PathRuns(path))
            results["paths"] = [p.row() for p in per_path.values()]
            results["migration"] = _migrations(b, host, 1 if quick else 3)
        finally:
            for svc in (host, relay, gw):
                if svc is not None:
                    svc.stop()
    _print(results)
    return results


def _print(results: dict[str, Any]) -> None:
    rows = []
    for p in results.get("paths", []):
        t, h, proc = p["time_to_first_frame_ms"], p["handshake_ms"], p["process_to_exit_ms"]
        rows.append([
            p["path"], str(p["runs"]), f"{t['p50']}", f"{t['p95']}", f"{h['p50']}", f"{h['p95']}",
            f"{p['target_p50_ms']:g}", "yes" if p["met"] else "NO",
            ",".join(p["paths_reported"]), str(len(p["failures"])), f"{proc['p50']}",
        ])  # fmt: skip
    print_table(
        "wavry connect NAME → first decoded frame (ms; handshake = bare RIFT msg1→msg2 on the "
        "same path, same run)",
        ["path", "runs", "ttff p50", "ttff p95", "hs p50", "hs p95", "target p50", "met",
         "reported", "failed", "process p50"],
        rows,
    )  # fmt: skip
    m = results.get("migration", {})
    rows = [
        [" → ".join(r.get("paths", [])) or str(r.get("error")),
         str(r.get("moved_after_opening_ms")), str(r.get("gap_around_move_ms")),
         str(r.get("gap_before_move_ms")), str(r.get("longest_gap_whole_session_ms"))]
        for r in m.get("runs", [])
    ]  # fmt: skip
    print_table(
        "relay → direct migration (gap: longest time between two frames shown, 0.5 s before to "
        f"2 s after the move; before: the 2.5 s before that; target ≤ {GAP_TARGET_MS:g} ms: "
        f"{'met' if m.get('met') else 'NOT met'})",
        ["paths", "moved after opening (ms)", "gap around move (ms)", "gap before (ms)",
         "longest gap in session (ms)"],
        rows,
    )  # fmt: skip
