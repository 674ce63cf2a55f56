"""PNG plots of `wavry bench peers` (matplotlib, Agg): latency over time per system and the
latency CDF, one panel per path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_peers_plots"]


def write_peers_plots(json_file: Path, results: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = json_file.with_suffix("")
    paths = list(results["paths"])
    # one colour per system in every panel
    names = list(dict.fromkeys(n for p in results["paths"].values() for n in p))
    colour = {n: f"C{i % 10}" for i, n in enumerate(names)}
    written: list[str] = []
    for kind in ("timeline", "cdf"):
        fig, axes = plt.subplots(
            1, len(paths), figsize=(7 * len(paths), 4.2), squeeze=False, sharey=kind == "cdf"
        )
        for ax, path in zip(axes[0], paths, strict=True):
            for name, r in results["paths"][path].items():
                if r.get("status") != "ok":
                    continue
                tl = r["timeline"]
                if kind == "timeline":
                    ax.plot(
                        tl["t_s"], tl["latency_ms"], label=name, linewidth=0.9, color=colour[name]
                    )
                else:
                    xs = sorted(tl["latency_ms"])
                    ys = [(i + 1) / len(xs) for i in range(len(xs))]
                    ax.plot(xs, ys, label=name, color=colour[name])
            ax.set_yscale("log") if kind == "timeline" else ax.set_xscale("log")
            ax.set_title(f"{path}", fontsize=10)
            if kind == "timeline":
                ax.set_xlabel("time in the measured window (s)")
                ax.set_ylabel("glass-to-glass latency (ms, log)")
            else:
                ax.set_xlabel("glass-to-glass latency (ms, log)")
                ax.set_ylabel("fraction of frames shown")
            ax.grid(True, alpha=0.3, which="both")
            ax.legend(fontsize=8)
        fig.tight_layout()
        out = Path(f"{stem}-{kind}.png")
        fig.savefig(out, dpi=90)
        plt.close(fig)
        written.append(str(out))
    return written
