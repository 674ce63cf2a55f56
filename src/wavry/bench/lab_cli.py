"""`wavry lab ...`: run the UDP impairment proxy and check network-namespace support."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated

import typer

from wavry.bench.netlab.model import LinkConfig, gilbert_elliott
from wavry.bench.netlab.netns import probe
from wavry.bench.netlab.proxy import ImpairmentProxy
from wavry.net.addr import AddressError, parse_endpoint

lab_app = typer.Typer(
    help="Network lab: UDP impairment proxy and network-namespace checks.",
    no_args_is_help=True,
    add_completion=False,
)


def parse_hostport(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`, through the project's one address parser."""
    try:
        return parse_endpoint(text)
    except AddressError as exc:
        raise typer.BadParameter(str(exc)) from None


def _pct(name: str, value: float) -> float:
    if not 0.0 <= value <= 100.0:
        raise typer.BadParameter(f"--{name} is a percentage in [0, 100], got {value}")
    return value / 100.0


def _event_loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(proxy: ImpairmentProxy, interval: float, duration: float | None) -> None:
    async with proxy:
        host, port = proxy.address
        typer.echo(f"proxy listening on {host}:{port}", err=True)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            while duration is None or loop.time() - start < duration:
                wait = interval
                if duration is not None:
                    wait = min(interval, max(0.0, duration - (loop.time() - start)))
                await asyncio.sleep(wait)
                typer.echo(proxy.stats.summary())
        finally:
            typer.echo(f"final: {proxy.stats.summary()}")


@lab_app.command()
def proxy(
    upstream: Annotated[str, typer.Option(help="Forward to HOST:PORT.")],
    listen: Annotated[str, typer.Option(help="Listen on HOST:PORT (port 0 = any).")] = (
        "127.0.0.1:9000"
    ),
    delay_ms: Annotated[float, typer.Option(help="One-way delay (ms).")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Jitter: ±ms (uniform) or sd (normal).")] = 0.0,
    jitter_dist: Annotated[str, typer.Option(help="uniform | normal")] = "uniform",
    allow_reorder: Annotated[bool, typer.Option(help="Let jitter reorder datagrams.")] = False,
    loss: Annotated[float, typer.Option(help="Random loss (%).")] = 0.0,
    burst_loss: Annotated[float, typer.Option(help="Gilbert–Elliott loss rate (%).")] = 0.0,
    mean_burst: Annotated[float, typer.Option(help="Mean burst length (datagrams).")] = 3.0,
    reorder: Annotated[float, typer.Option(help="Datagrams held back (%).")] = 0.0,
    reorder_ms: Annotated[float, typer.Option(help="Hold-back time (ms).")] = 20.0,
    duplicate: Annotated[float, typer.Option(help="Duplicated datagrams (%).")] = 0.0,
    rate_kbps: Annotated[float | None, typer.Option(help="Rate limit (kbit/s).")] = None,
    queue_packets: Annotated[int | None, typer.Option(help="Queue limit (datagrams).")] = None,
    queue_bytes: Annotated[int | None, typer.Option(help="Queue limit (bytes).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    both: Annotated[bool, typer.Option("--both", help="Impair both directions (default).")] = (
        False
    ),
    up_only: Annotated[bool, typer.Option("--up-only", help="Impair client→upstream only.")] = (
        False
    ),
    down_only: Annotated[
        bool, typer.Option("--down-only", help="Impair upstream→client only.")
    ] = False,
    interval_seconds: Annotated[float, typer.Option(help="Seconds between stats lines.")] = 1.0,
    seconds: Annotated[float | None, typer.Option(help="Stop after N seconds.")] = None,
    uvloop: Annotated[bool, typer.Option(help="Use uvloop when installed.")] = True,
) -> None:
    """Run a UDP impairment proxy until Ctrl-C, printing stats every interval."""
    if both + up_only + down_only > 1:
        raise typer.BadParameter("give at most one of --both, --up-only, --down-only")
    if queue_packets is not None and queue_bytes is not None:
        raise typer.BadParameter("give --queue-packets or --queue-bytes, not both")
    if jitter_dist not in ("uniform", "normal"):
        raise typer.BadParameter("--jitter-dist must be uniform or normal")
    if not interval_seconds > 0:
        raise typer.BadParameter("--interval-seconds must be > 0")
    try:
        burst = gilbert_elliott(_pct("burst-loss", burst_loss), mean_burst) if burst_loss else None
        cfg = LinkConfig(
            delay_ms=delay_ms,
            jitter_ms=jitter_ms,
            jitter_dist="normal" if jitter_dist == "normal" else "uniform",
            allow_reorder=allow_reorder,
            loss=_pct("loss", loss),
            burst=burst,
            reorder=_pct("reorder", reorder),
            reorder_ms=reorder_ms,
            duplicate=_pct("duplicate", duplicate),
            rate_kbps=rate_kbps,
            queue_packets=queue_packets,
            queue_bytes=queue_bytes,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    plain = LinkConfig()
    up = plain if down_only else cfg
    down = plain if up_only else cfg
    server = ImpairmentProxy(parse_hostport(listen), parse_hostport(upstream), up, down, seed=seed)
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=_event_loop_factory(uvloop)) as runner,
    ):
        try:
            runner.run(_serve(server, interval_seconds, seconds))
        except OSError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None


@lab_app.command("netns-probe")
def netns_probe() -> None:
    """Check whether network namespaces, veth and tbf can be used here."""
    ok, reason = probe()
    typer.echo(("available: " if ok else "unavailable: ") + reason)
    if not ok:
        raise typer.Exit(1)
