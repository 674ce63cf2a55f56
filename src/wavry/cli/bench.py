"""`wavry bench …` (measurements with their baselines in the same run) and `wavry lab`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wavry.cli.common import write_json

bench_app = typer.Typer(no_args_is_help=True, help="Measurements with baselines in the same run.")

JsonOpt = Annotated[
    Path | None, typer.Option("--json", help="Write results to FILE (plots next to it)")
]
QuickOpt = Annotated[bool, typer.Option("--quick", help="Shorter runs")]


@bench_app.command("transport")
def bench_transport(json_file: JsonOpt = None, quick: QuickOpt = False) -> None:
    """Handshakes/s, seal+open, and per-datagram receive cost next to raw floors."""
    from wavry.bench.transport import run_transport_bench

    results = run_transport_bench(quick=quick)
    if json_file is not None:
        write_json(json_file, results)
        typer.echo(f"wrote {json_file}")


@bench_app.command("connect")
def bench_connect(
    json_file: Annotated[
        str | None, typer.Option("--json", help="Write results as JSON to FILE (- = stdout)")
    ] = None,
    runs: Annotated[int, typer.Option(min=1, max=200, help="Runs per path")] = 10,
    quick: QuickOpt = False,
) -> None:
    """wavry connect NAME to the first frame through real NATs: LAN, punched, relayed (p50/p95,
    next to the bare RIFT handshake), and the gap of a relay → direct move (root: namespaces)."""
    from wavry.bench.connect import BenchError, run_connect_bench
    from wavry.cli.common import fail

    try:
        results = run_connect_bench(runs=runs, quick=quick)
    except BenchError as exc:
        fail(str(exc))
    write_json(json_file, results)


@bench_app.command("net")
def bench_net(json_file: JsonOpt = None, quick: QuickOpt = False) -> None:
    """Synthetic video through real sessions over lossy, jittery and bottlenecked links."""
    from wavry.bench.net import run_net_bench

    run_net_bench(quick=quick, json_file=json_file)


@bench_app.command("throughput")
def bench_throughput(json_file: JsonOpt = None, quick: QuickOpt = False) -> None:
    """Media at 20-200 Mbit/s over loopback: delivered, on time, CPU per side, vs bare crypto."""
    from wavry.bench.throughput import run_throughput_bench

    run_throughput_bench(quick=quick, json_file=json_file)


@bench_app.command("latency")
def bench_latency(
    json_file: JsonOpt = None,
    quick: QuickOpt = False,
    source: Annotated[
        str,
        typer.Option(
            help="synthetic: floor, wavry (headless, windowed), aiortc and browser side by side; "
            "x11: a real display, capture on change vs on a clock"
        ),
    ] = "synthetic",
) -> None:
    """Glass-to-glass latency from the marker: floor, wavry headless+windowed, aiortc, browser
    (synthetic), or X11 capture on change against a fixed clock (x11)."""
    if source == "x11":
        from wavry.bench.latency_x11 import run_x11_capture_bench

        write_json(json_file, run_x11_capture_bench(quick=quick))
        if json_file is not None:
            typer.echo(f"wrote {json_file}")
        return
    if source != "synthetic":
        from wavry.cli.common import fail

        fail(f"--source must be synthetic or x11, got {source!r}", 2)
    from wavry.bench.latency import bench_latency_command

    bench_latency_command(json_file, quick)


@bench_app.command("present")
def bench_present(json_file: JsonOpt = None, quick: QuickOpt = False) -> None:
    """Cost of showing a decoded picture in the client window, per presenter and stage."""
    from wavry.bench.present import run_present_bench

    run_present_bench(quick=quick, json_file=json_file)


@bench_app.command("extras")
def bench_extras(json_file: JsonOpt = None, quick: QuickOpt = False) -> None:
    """Files (1 GiB while video streams), clipboard latency (X11, Wayland), audio if present."""
    from wavry.bench.extras import run_extras_command

    run_extras_command(quick, json_file)


@bench_app.command("attack")
def bench_attack(
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="mutate, junk, handshakes, sessions (repeatable; default: all)"),
    ] = None,
    json_file: JsonOpt = None,
    quick: QuickOpt = False,
) -> None:
    """A streaming host under attack (mutated traffic, junk, handshake floods, handshake-only
    sessions), each next to its baseline without attack."""
    from wavry.bench.attack import SCENARIOS, AttackOptions, run_attack

    chosen = tuple(scenario or SCENARIOS)
    bad = [s for s in chosen if s not in SCENARIOS]
    if bad:
        typer.echo(f"error: unknown scenario {bad[0]!r} (one of {', '.join(SCENARIOS)})", err=True)
        raise typer.Exit(2)
    write_json(json_file, run_attack(AttackOptions(scenarios=chosen, quick=quick)))


@bench_app.command("soak")
def bench_soak(
    minutes: Annotated[float, typer.Option(min=0.5, help="How long the soak runs")] = 60.0,
    cycle_seconds: Annotated[
        float, typer.Option(min=30.0, help="One round of clipboard, keys and path changes")
    ] = 60.0,
    reconnect_every: Annotated[
        int, typer.Option(min=1, help="A 12 s blackout (reconnect) every N cycles")
    ] = 5,
    json_file: JsonOpt = None,
) -> None:
    """A host and a client for N minutes under loss, capacity and address changes, reconnects,
    files, clipboard and keys: RSS, fds and threads of both over time."""
    from wavry.bench.soak import SoakOptions, run_soak

    opts = SoakOptions(minutes=minutes, cycle_s=cycle_seconds, reconnect_every=reconnect_every)
    result = run_soak(opts, json_file)
    write_json(json_file, result)
    if result["error"]:
        typer.echo(f"error: {result['error']}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from wavry.bench.flood import bench_flood_command
    from wavry.bench.gateway import bench_gateway_command
    from wavry.bench.lab_cli import lab_app
    from wavry.bench.relay import bench_relay_command

    bench_app.command("relay", help="Relay forwarding rate and added latency vs a bare echo.")(
        bench_relay_command
    )
    bench_app.command("gateway", help="Signaling sockets, round trips, loop lag under login load.")(
        bench_gateway_command
    )
    bench_app.command("flood", help="Junk floods at the relay and STUN while a session streams.")(
        bench_flood_command
    )
    from wavry.bench.peers.command import bench_peers_command

    bench_app.command("peers", help="Glass to glass next to VNC, RDP, Selkies and aiortc.")(
        bench_peers_command
    )
    app.add_typer(bench_app, name="bench")
    app.add_typer(lab_app, name="lab", help="Network lab: impairment proxy, namespaces.")
