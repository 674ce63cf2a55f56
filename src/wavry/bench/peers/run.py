"""`wavry bench peers`: run every system on every path, print the table, write JSON and plots."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

from wavry.bench.peers.measure import FLOOR, MeasureSettings, measure_one
from wavry.bench.peers.stage import NetPath, NotRunnable, SystemUnderTest
from wavry.bench.peers.systems import RdpSystem, VncSystem, WavrySystem
from wavry.bench.peers.targets import evaluate_targets
from wavry.bench.report import machine_facts, print_table

__all__ = ["PATHS", "SYSTEMS", "default_cache_dir", "run_peers_bench"]


def _selkies() -> SystemUnderTest:
    from wavry.bench.peers.selkies import SelkiesSystem

    return SelkiesSystem()


def _aiortc() -> SystemUnderTest:
    from wavry.bench.peers.aiortc_peer import AiortcSystem

    return AiortcSystem()


SYSTEMS: dict[str, Callable[[], SystemUnderTest]] = {
    "wavry": WavrySystem,
    "vnc": VncSystem,
    "rdp": RdpSystem,
    "selkies": _selkies,
    "aiortc": _aiortc,
}
PATHS = ("loopback", "bottleneck")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wavry" / "bench-peers"


@contextmanager
def open_path(name: str, link_settings: dict[str, Any]) -> Iterator[NetPath]:
    if name == "loopback":
        yield NetPath("loopback")
        return
    from wavry.bench.peers.link import BottleneckLink

    with BottleneckLink(**link_settings) as link:
        yield NetPath(
            "bottleneck",
            server_addr=link.server_addr,
            server_ns=link.server_ns,
            viewer_ns=link.viewer_ns,
            counters=link.counters,
        )


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for path, by_system in results["paths"].items():
        for name, r in by_system.items():
            if r["status"] != "ok":
                rows.append([path, name, r["status"]])
                continue
            cpu = "-"
            if "cpu_server_cores" in r:
                cpu = f"{r['cpu_server_cores']:.2f} / {r['cpu_viewer_cores']:.2f}"
            rows.append(
                [
                    path,
                    name,
                    "ok",
                    _fmt(r["p50_ms"]),
                    _fmt(r["p95_ms"]),
                    _fmt(r["p99_ms"]),
                    _fmt(r["fps_shown"]),
                    _fmt(r["trend_ms_per_s"], 2),
                    cpu,
                    _fmt(r["link"]["to_viewer"]["mbit_s"]) if "link" in r else "-",
                    f"{r['loadavg_start'][0]:.1f}",
                ]
            )
    width = 11
    return [row + [""] * (width - len(row)) for row in rows]


def print_results(results: dict[str, Any]) -> None:
    s = results["settings"]
    print_table(
        f"Glass to glass, {s['width']}x{s['height']}@{s['fps']}: marker drawn on display A, "
        f"read back from the viewer's display B ({s['seconds']:g} s per system)",
        [
            "path",
            "system",
            "status",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "shown/s",
            "trend ms/s",
            "CPU srv/view",
            "Mbit/s",
            "load",
        ],
        _rows(results),
    )
    for path, by_system in results["paths"].items():
        for name, r in by_system.items():
            if r["status"] != "ok":
                print(f"  {path} {name}: {r['status']}: {r.get('reason', '')}")
                for log in r.get("logs", []):
                    print(f"      log: {log}")
    for key, met in results.get("targets", {}).items():
        if isinstance(met, bool) or met is None:
            verdict = "not evaluated" if met is None else ("met" if met else "MISSED")
            print(f"  target {key}: {verdict}")


def run_peers_bench(
    *,
    paths: Sequence[str] = PATHS,
    systems: Sequence[str] = tuple(SYSTEMS),
    width: int = 1280,
    height: int = 720,
    fps: int = 60,
    seconds: float = 20.0,
    warmup_s: float = 3.0,
    grab_interval_ms: float = 1.0,
    cache_dir: Path | None = None,
    link_settings: dict[str, Any] | None = None,
    json_file: Path | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Measure the grabber's floor and each system on each path; returns the JSON dict."""
    settings = MeasureSettings(
        width, height, fps, seconds, warmup_s, grab_interval_ms, cache_dir or default_cache_dir()
    )
    link = {"rate_kbps": 20_000.0, "delay_ms": 10.0, "queue_ms": 50.0, **(link_settings or {})}
    results: dict[str, Any] = {
        "bench": "peers",
        "machine": machine_facts(),
        "settings": {
            "width": width,
            "height": height,
            "fps": fps,
            "seconds": seconds,
            "warmup_s": warmup_s,
            "grab_interval_ms": grab_interval_ms,
            "bottleneck": {
                **link,
                "how": "two network namespaces joined by tun devices: tbf (rate, queue of "
                "queue_ms) on each egress, a forwarding process adds delay_ms each way",
            },
            "loadavg_before": list(os.getloadavg()),
        },
        "paths": {},
    }
    for path_name in paths:
        by_system: dict[str, Any] = {}
        results["paths"][path_name] = by_system
        try:
            with open_path(path_name, link) as path:
                if path_name == paths[0]:
                    by_system[FLOOR] = _one(None, path, settings, verbose)
                for name in systems:
                    by_system[name] = _one(SYSTEMS[name](), path, settings, verbose)
        except (OSError, NotRunnable) as exc:
            for name in systems:
                by_system.setdefault(
                    name, {"system": name, "status": "not run", "reason": f"{path_name}: {exc}"}
                )
    results["settings"]["loadavg_after"] = list(os.getloadavg())
    results["targets"] = evaluate_targets(results)
    to_stdout = json_file is not None and str(json_file) == "-"
    if verbose:
        # `--json -`: the JSON owns stdout, the human table goes to stderr
        with redirect_stdout(sys.stderr if to_stdout else sys.stdout):
            print_results(results)
    if to_stdout:
        sys.stdout.write(json.dumps(results, indent=1) + "\n")
        sys.stdout.flush()
    elif json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(results, indent=1) + "\n")
        from wavry.bench.peers.plots import write_peers_plots

        plots = write_peers_plots(json_file, results)
        if verbose:
            print(f"wrote {json_file} and {', '.join(plots)}")
    return results


def _one(
    system: SystemUnderTest | None, path: NetPath, st: MeasureSettings, verbose: bool
) -> dict[str, Any]:
    name = FLOOR if system is None else system.name
    if verbose:
        print(f"  {path.name} {name}: {st.seconds:g} s ...", file=sys.stderr, flush=True)
    r = measure_one(system, path, st)
    if verbose:
        if r["status"] == "ok":
            print(
                f"    p50 {_fmt(r['p50_ms'])} ms, p95 {_fmt(r['p95_ms'])} ms, "
                f"{_fmt(r['fps_shown'])} shown/s, trend {_fmt(r['trend_ms_per_s'], 2)} ms/s",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(f"    {r['status']}: {r.get('reason')}", file=sys.stderr, flush=True)
    return r
