"""What `wavry bench soak` concludes from its samples and events: growth of RSS, fds and threads
after the warm-up against the end of the run, stuck keys, sessions lost; a table and a plot."""

from __future__ import annotations

import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ProcessSample", "summarize", "write_soak_plot"]

RSS_GROWTH_LIMIT_MB = 5.0
RECONNECT_WITHIN_S = 20.0  # after a blackout ends


@dataclass(frozen=True, slots=True)
class ProcessSample:
    rss_kb: int
    fds: int
    threads: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _window_median(rows: list[tuple[float, float]], lo: float, hi: float) -> float | None:
    values = [v for t, v in rows if lo <= t <= hi]
    return statistics.median(values) if values else None


def _growth(samples: list[dict[str, Any]], name: str, key: str) -> dict[str, Any]:
    rows = [(s["t"], float(s[name][key])) for s in samples if s.get(name)]
    if len(rows) < 3:
        return {"baseline": None, "end": None, "growth": None, "max": None}
    duration = rows[-1][0]
    warmup = min(120.0, 0.2 * duration)
    span = max(30.0, 0.1 * duration)
    base = _window_median(rows, warmup, warmup + span)
    end = _window_median(rows, duration - span, duration)
    after = [v for t, v in rows if t >= warmup]
    growth = None if base is None or end is None else end - base
    return {"baseline": base, "end": end, "growth": growth, "max": max(after) if after else None}


def summarize(soak: Any, alive: dict[str, bool], error: str | None) -> dict[str, Any]:
    samples: list[dict[str, Any]] = soak.samples
    events: list[dict[str, Any]] = soak.events
    resources: dict[str, dict[str, Any]] = {}
    for name in ("host", "client"):
        resources[name] = {k: _growth(samples, name, k) for k in ("rss_kb", "fds", "threads")}
    client = soak.procs.get("client")
    reconnects = [t for t, line in (client.marks if client else []) if "reconnected" in line]
    expected = [
        (start, end) for start, end in soak.blackouts if end + RECONNECT_WITHIN_S <= soak.now()
    ]
    missed = [
        (s, e) for s, e in expected if not any(e <= t <= e + RECONNECT_WITHIN_S for t in reconnects)
    ]
    unexpected = [
        t
        for t in reconnects
        if not any(s <= t <= e + RECONNECT_WITHIN_S for s, e in soak.blackouts)
    ]
    stuck = [e for e in events if e["kind"] in ("key tap", "during blackout") and e["held_on_host"]]
    held_reached_host = [e for e in events if e["kind"] == "blackout" and e["held_before"]]
    clip = [e for e in events if e["kind"] == "clipboard"]
    fps = [n for _, n in getattr(soak, "fps", [])]
    result: dict[str, Any] = {
        "error": error,
        "minutes": soak.opts.minutes,
        "cycle_s": soak.opts.cycle_s,
        "duration_s": round(soak.now(), 1),
        "processes_alive_at_end": alive,
        "resources": resources,
        "blackouts": len(soak.blackouts),
        "reconnects": len(reconnects),
        "blackouts_without_reconnect": len(missed),
        "unexpected_reconnects": len(unexpected),
        "sessions_lost": len(missed) + len(unexpected) + sum(not v for v in alive.values()),
        "stuck_key_checks": sum(e["kind"] in ("key tap", "during blackout") for e in events),
        "stuck_keys": len(stuck),
        "held_key_reached_host": f"{len(held_reached_host)}/{len(soak.blackouts)}",
        "clipboard_ok": sum(bool(e["ok"]) for e in clip),
        "clipboard_failed": sum(not e["ok"] for e in clip),
        "clipboard_ms_median": statistics.median([e["ms"] for e in clip if e["ok"]] or [0]),
        "files_received": soak.received_files,
        "address_changes": sum(e["kind"] == "address change" for e in events),
        "client_fps_median": statistics.median(fps) if fps else None,
        "samples": samples,
        "events": events,
    }
    result["targets"] = _targets(result)
    _print(result)
    return result


def _targets(r: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("host", "client"):
        res = r["resources"][name]
        g = res["rss_kb"]["growth"]
        out[f"{name} RSS growth < {RSS_GROWTH_LIMIT_MB:g} MB"] = (
            "not evaluated" if g is None else "met" if g / 1024 < RSS_GROWTH_LIMIT_MB else "MISSED"
        )
        for k in ("fds", "threads"):
            gk = res[k]["growth"]
            out[f"{name} {k}: no growth"] = (
                "not evaluated" if gk is None else "met" if gk <= 0 else "MISSED"
            )
    out["no stuck key"] = "met" if r["stuck_keys"] == 0 and r["stuck_key_checks"] else "MISSED"
    out["no session lost"] = "met" if r["sessions_lost"] == 0 and not r["error"] else "MISSED"
    return out


def _print(r: dict[str, Any]) -> None:
    w = sys.stderr.write
    w(f"\nwavry bench soak: {r['duration_s']:.0f} s, {r['blackouts']} blackouts, "
      f"{r['address_changes']} address changes\n")  # fmt: skip
    if r["error"]:
        w(f"error: {r['error']}\n")
    w(f"{'process':8} {'metric':8} {'baseline':>10} {'end':>10} {'growth':>10} {'max':>10}\n")
    for name in ("host", "client"):
        for k, scale, unit in (("rss_kb", 1024, "MB"), ("fds", 1, ""), ("threads", 1, "")):
            g = r["resources"][name][k]
            cells = [
                "-" if g[x] is None else f"{g[x] / scale:.1f}{unit}"
                for x in ("baseline", "end", "growth", "max")
            ]
            w(f"{name:8} {k:8} " + " ".join(f"{c:>10}" for c in cells) + "\n")
    w(
        f"reconnects {r['reconnects']} (unexpected {r['unexpected_reconnects']}, blackouts "
        f"without one {r['blackouts_without_reconnect']}); stuck keys {r['stuck_keys']} of "
        f"{r['stuck_key_checks']} checks; held key reached the host {r['held_key_reached_host']};"
        f" clipboard {r['clipboard_ok']} ok / {r['clipboard_failed']} failed (median "
        f"{r['clipboard_ms_median']} ms); files received {r['files_received']}; client fps "
        f"median {r['client_fps_median']}\n"
    )
    for target, verdict in r["targets"].items():
        w(f"  {verdict:14} {target}\n")


def write_soak_plot(json_file: Path, r: dict[str, Any]) -> str | None:
    samples = r.get("samples") or []
    if not samples:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for ax, (key, scale, label) in zip(
        axes,
        (("rss_kb", 1024, "RSS (MB)"), ("fds", 1, "open fds"), ("threads", 1, "threads")),
        strict=True,
    ):
        for name in ("host", "client"):
            pts = [(s["t"] / 60, s[name][key] / scale) for s in samples if s.get(name)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, linewidth=1)
        for e in r.get("events", []):
            if e["kind"] == "blackout":
                ax.axvline(e["t"] / 60, color="grey", linewidth=0.5, linestyle=":")
        ax.set_ylabel(label, fontsize=8)
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("minutes (dotted: blackouts, each followed by a reconnect)", fontsize=8)
    fig.suptitle("wavry bench soak", fontsize=9)
    fig.tight_layout()
    path = json_file.with_suffix("").as_posix() + "-resources.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
