"""The `wavry bench peers` command (registered in the CLI's `bench` group)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bench_peers_command"]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def bench_peers_command(
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write results to FILE (- = stdout); plots FILE-timeline.png, FILE-cdf.png",
        ),
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option(
            "--path", help="loopback or bottleneck (repeatable; default: both, in that order)"
        ),
    ] = None,
    systems: Annotated[
        str,
        typer.Option(help="Comma-separated systems to run: wavry,vnc,rdp,selkies,aiortc"),
    ] = "wavry,vnc,rdp,selkies,aiortc",
    size: Annotated[str, typer.Option(help="Picture size WxH (display A and B)")] = "1280x720",
    fps: Annotated[int, typer.Option(min=1, max=240, help="Animation frame rate")] = 60,
    seconds: Annotated[float, typer.Option(min=1, help="Measured seconds per system")] = 20.0,
    warmup_seconds: Annotated[
        float, typer.Option(min=0, help="Seconds each system runs before the measured window")
    ] = 3.0,
    grab_interval_ms: Annotated[
        float, typer.Option(min=0.2, help="Pause between two grabs of the viewer's display")
    ] = 1.0,
    rate_kbps: Annotated[
        float, typer.Option(min=100, help="Bottleneck rate (tbf), each direction")
    ] = 20_000.0,
    delay_ms: Annotated[
        float, typer.Option(min=0, help="Bottleneck one-way delay, each direction")
    ] = 10.0,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Kept between runs: Selkies' virtual environment (default: XDG cache)"),
    ] = None,
) -> None:
    """Glass to glass against other remote desktops: wavry, VNC, RDP, Selkies, aiortc."""
    from wavry.bench.peers.run import PATHS, SYSTEMS, run_peers_bench

    m = re.fullmatch(r"(\d+)x(\d+)", size)
    # the marker band is drawn in one X request, which caps the width (1920: 245 KiB)
    if m is None or not (320 <= int(m.group(1)) <= 1920 and 240 <= int(m.group(2)) <= 1440):
        raise _fail(f"--size must be WxH from 320x240 to 1920x1440, got {size!r}", 2)
    chosen = [s.strip() for s in systems.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SYSTEMS]
    if unknown or not chosen:
        raise _fail(
            f"--systems: unknown {', '.join(unknown) or '(none)'}; known: {','.join(SYSTEMS)}", 2
        )
    paths = path or list(PATHS)
    bad = [p for p in paths if p not in PATHS]
    if bad:
        raise _fail(f"--path must be one of {', '.join(PATHS)}, got {', '.join(bad)}", 2)
    run_peers_bench(
        paths=paths,
        systems=chosen,
        width=int(m.group(1)),
        height=int(m.group(2)),
        fps=fps,
        seconds=seconds,
        warmup_s=warmup_seconds,
        grab_interval_ms=grab_interval_ms,
        cache_dir=cache_dir,
        link_settings={"rate_kbps": rate_kbps, "delay_ms": delay_ms},
        json_file=json_file,
    )
