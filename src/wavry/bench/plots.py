"""PNG plots for `wavry bench net` (matplotlib, Agg backend): bitrate and queueing delay over
time per scenario, and the latency CDF of every scenario/variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plots(
    json_file: Path, timelines: dict[str, dict[str, Any]], cdfs: dict[str, list[float]]
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
    return written
