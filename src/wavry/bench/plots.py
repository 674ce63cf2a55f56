"""PNG plots for `wavry bench net` (matplotlib, Agg backend): bitrate and queueing delay over
time per scenario, the latency CDF of every scenario/variant, and the loss scenarios' on-time
ratio and overhead per repair variant (Reed–Solomon, XOR, none) side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plots(
    json_file: Path,
    timelines: dict[str, dict[str, Any]],
    cdfs: dict[str, list[float]],
    results: list[dict[str, Any]] | None = None,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = json_file.with_suffix("")
    scenarios = list(dict.fromkeys(k.split("/")[0] for k in timelines))
    written: list[str] = []

    def grid(n: int) -> tuple[Any, list[Any]]:
        cols = 2 if n > 1 else 1
        rows = (n + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.8 * rows), squeeze=False)
        flat = [a for row in axes for a in row]
        for a in flat[n:]:
            a.set_visible(False)
        return fig, flat

    for kind, ylabel, field in (
        ("bitrate", "delivered Mbit/s", "mbit_s"),
        ("queue", "queueing delay p95 (ms)", "queue_ms_p95"),
    ):
        fig, axes = grid(len(scenarios))
        for ax, sc in zip(axes, scenarios, strict=False):
            for key, tl in timelines.items():
                if key.split("/")[0] != sc:
                    continue
                ys = [float("nan") if y is None else y for y in tl[field]]
                ax.plot(tl["t"], ys, label=key.split("/")[1], linewidth=1)
                if kind == "bitrate" and any(c is not None for c in tl["capacity_mbit_s"]):
                    cap = [float("nan") if c is None else c for c in tl["capacity_mbit_s"]]
                    ax.plot(tl["t"], cap, "k--", linewidth=0.8, label="_capacity")
            if kind == "queue":
                ax.axhline(20, color="grey", linestyle=":", linewidth=0.8)
            ax.set_title(sc, fontsize=9)
            ax.set_xlabel("s", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = Path(f"{stem}-{kind}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(str(path))

    fig, axes = grid(len(scenarios))
    for ax, sc in zip(axes, scenarios, strict=False):
        for key, values in cdfs.items():
            if key.split("/")[0] != sc or not values:
                continue
            n = len(values)
            ax.plot(values, [(i + 1) / n for i in range(n)], label=key.split("/")[1])
        ax.set_xscale("log")
        ax.set_title(sc, fontsize=9)
        ax.set_xlabel("frame latency (ms, log)", fontsize=8)
        ax.set_ylabel("fraction", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(f"{stem}-latency-cdf.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(str(path))
    if results:
        written += _repair_plot(plt, stem, results)
    return written


def _repair_plot(plt: Any, stem: Path, results: list[dict[str, Any]]) -> list[str]:
    """On-time ratio and overhead of each loss scenario's variants (wavry = Reed-Solomon)."""
    lossy = [m for m in results if m["scenario"].startswith(("loss", "burst"))]
    scenarios = list(dict.fromkeys(m["scenario"] for m in lossy))
    variants = list(dict.fromkeys(m["variant"] for m in lossy))
    if not scenarios:
        return []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.2))
    width = 0.8 / len(variants)
    for vi, v in enumerate(variants):
        xs = [i + vi * width for i in range(len(scenarios))]
        get = {m["scenario"]: m for m in lossy if m["variant"] == v}
        on = [(get.get(sc) or {}).get("on_time_ratio") or 0.0 for sc in scenarios]
        ovh = [(get.get(sc) or {}).get("overhead_pct") or 0.0 for sc in scenarios]
        label = "wavry (RS)" if v == "wavry" else v
        a1.bar(xs, on, width, label=label)
        a2.bar(xs, ovh, width, label=label)
    for ax, ylabel in ((a1, "frames on time"), (a2, "overhead %")):
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(scenarios))], scenarios, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
    a1.set_ylim(0.8, 1.0)
    fig.tight_layout()
    path = Path(f"{stem}-repair.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [str(path)]
