"""The `wavry` command."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from wavry.net.addr import AddressError, parse_hostport
from wavry.net.loop import run
from wavry.store import KnownHosts, StoreError, TrustedDevices, load_or_create_identity

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Wavry: low-latency remote desktop and game streaming over RIFT.",
)
pins_app = typer.Typer(no_args_is_help=True, help="Host identities pinned on first use.")
trust_app = typer.Typer(no_args_is_help=True, help="Clients this host trusts without pairing.")
bench_app = typer.Typer(no_args_is_help=True, help="Measurements with baselines in the same run.")
app.add_typer(pins_app, name="pins")
app.add_typer(trust_app, name="trust")
app.add_typer(bench_app, name="bench")


def _register_lab() -> None:
    from wavry.bench.lab_cli import lab_app

    app.add_typer(lab_app, name="lab", help="Network lab: impairment proxy, namespaces.")


_register_lab()


def _register_relay() -> None:
    from wavry.relay.cli import relay_command

    app.command("relay", help="Run a blind UDP relay for peers that cannot reach each other.")(
        relay_command
    )


_register_relay()


def _register_gateway() -> None:
    from wavry.gateway.bench_gateway import bench_gateway_command
    from wavry.gateway.bench_relay import bench_relay_command
    from wavry.gateway.cli import gateway_command

    app.command(
        "gateway", help="Run the control plane: accounts, signaling, relay leases, STUN, admin."
    )(gateway_command)
    bench_app.command("relay", help="Relay forwarding rate and added latency vs a bare echo.")(
        bench_relay_command
    )
    bench_app.command("gateway", help="Signaling sockets, round trips, loop lag under login load.")(
        bench_gateway_command
    )


_register_gateway()


def _register_bench_peers() -> None:
    from wavry.bench.peers.command import bench_peers_command

    bench_app.command("peers", help="Glass to glass next to VNC, RDP, Selkies and aiortc.")(
        bench_peers_command
    )


_register_bench_peers()

DEFAULT_PORT = 47800


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _addr(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    try:
        return parse_hostport(text, default_port)
    except AddressError as exc:
        fail(str(exc), 2)


# Options `wavry host` and `wavry connect` share (one definition each).
FileShareOpt = Annotated[
    float, typer.Option(min=0.01, max=1.0, help="File transfer share of the video bitrate")
]
FileSpareOpt = Annotated[
    bool,
    typer.Option(
        "--file-spare/--no-file-spare",
        help="Let files use spare path capacity beyond --file-share (docs/files.md)",
    ),
]
ClipboardMaxOpt = Annotated[
    int, typer.Option(min=0, help="Largest clipboard text synced, in bytes")
]
RecordOpt = Annotated[
    bool, typer.Option("--record", help="Record the stream to MP4 (no re-encoding)")
]
RecordDirOpt = Annotated[
    Path | None, typer.Option(help="Where recordings go (default: ~/Videos/wavry)")
]


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    display: Annotated[str | None, typer.Option(help="X display to probe, e.g. :0")] = None,
) -> None:
    """Probe capture, encoders, decoders, input, audio, clipboard and network; say what to fix."""
    from wavry.doctor import render_table, run_doctor, to_json

    results = run_doctor(display)
    if as_json:
        typer.echo(json.dumps(to_json(results), indent=2))
    else:
        typer.echo(render_table(results))


@app.command("id")
def id_cmd(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print this device's Wavry ID (created on first use)."""
    try:
        identity = load_or_create_identity()
    except StoreError as exc:
        fail(str(exc))
    if json_out:
        typer.echo(json.dumps({"wavry_id": identity.wavry_id}))
    else:
        typer.echo(identity.wavry_id)


class TrustMode(StrEnum):
    paired = "paired"
    any = "any"


def _size(text: str | None, what: str) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"{what} must look like 1280x720, got {text!r}", 2)
    if w < 64 or h < 64 or w > 8192 or h > 8192 or w % 2 or h % 2:
        fail(f"{what} must be even and between 64 and 8192 pixels, got {text!r}", 2)
    return w, h


class SourceName(StrEnum):
    synthetic = "synthetic"
    x11 = "x11"
    wayland = "wayland"
    virtual = "virtual"


class CodecName(StrEnum):
    h264 = "h264"
    hevc = "hevc"
    av1 = "av1"


@app.command()
def host(
    listen: Annotated[str, typer.Option(help="UDP address to listen on (port 0 = any)")] = (
        f"0.0.0.0:{DEFAULT_PORT}"
    ),
    trust: Annotated[
        TrustMode, typer.Option(help="paired: only trusted devices; any: everyone (labs/tests)")
    ] = TrustMode.paired,
    pair: Annotated[bool, typer.Option("--pair", help="Show a pairing code right away")] = False,
    name: Annotated[str, typer.Option(help="Name shown to clients")] = "",
    source: Annotated[
        SourceName | None,
        typer.Option(help="Picture source (default: Wayland portal, else X11 from DISPLAY)"),
    ] = None,
    display: Annotated[str | None, typer.Option(help="X display to capture, e.g. :0")] = None,
    monitor: Annotated[int | None, typer.Option(help="Monitor id to capture")] = None,
    virtual: Annotated[
        str | None, typer.Option(help="Start a private virtual display WxH and stream it")
    ] = None,
    run_cmd: Annotated[
        str | None, typer.Option("--run", help="Command to start on the virtual display")
    ] = None,
    size: Annotated[str, typer.Option(help="Size of the synthetic source")] = "1280x720",
    codec: Annotated[CodecName, typer.Option(help="Preferred codec")] = CodecName.h264,
    bitrate: Annotated[int, typer.Option(min=200, max=500_000, help="Start bitrate kbit/s")] = 8000,
    max_bitrate: Annotated[
        int | None,
        typer.Option(
            min=200,
            max=1_000_000,
            help="Highest bitrate DELTA may raise to, kbit/s (default: 2 × --bitrate)",
        ),
    ] = None,
    fps: Annotated[int, typer.Option(min=1, max=240)] = 60,
    send_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--send-file", help="Send this file to each client that connects (repeatable)"
        ),
    ] = None,
    file_out_dir: Annotated[
        Path | None,
        typer.Option(help="Where files from clients land (default: ~/Downloads/wavry)"),
    ] = None,
    file_share: FileShareOpt = 0.15,
    max_file_size: Annotated[
        int, typer.Option(min=0, help="Largest file accepted from a client, in bytes")
    ] = 4 * 1024**3,
    file_spare: FileSpareOpt = True,
    clipboard_max: ClipboardMaxOpt = 1 << 20,
    record: RecordOpt = False,
    record_dir: RecordDirOpt = None,
    audio: Annotated[
        str | None,
        typer.Option(
            help="Audio to stream: system (the mix), mic, source:NAME, app:NAME or off "
            "(default: system when PipeWire/PulseAudio answers)"
        ),
    ] = None,
    audio_frame_ms: Annotated[
        int, typer.Option(min=5, max=10, help="Opus frame duration: 5 or 10 ms")
    ] = 10,
) -> None:
    """Share this machine: accept RIFT sessions and stream the screen to clients."""
    from wavry.runtime.host import HostOptions, serve
    from wavry.runtime.sources import SourceError

    syn = _size(size, "--size")
    assert syn is not None
    if audio is not None:
        from wavry.platform.audio import AudioSpec

        try:
            AudioSpec.parse(audio)
        except ValueError as exc:
            fail(str(exc), 2)
    if audio_frame_ms not in (5, 10):
        fail(f"--audio-frame-ms must be 5 or 10, got {audio_frame_ms}", 2)
    opts = HostOptions(
        listen=_addr(listen),
        trust_any=trust is TrustMode.any,
        pair=pair,
        name=name,
        source=source.value if source else None,
        codec=codec.value,
        bitrate_kbps=bitrate,
        max_bitrate_kbps=max_bitrate,
        fps=fps,
        width=syn[0],
        height=syn[1],
        display=display,
        monitor=monitor,
        virtual=_size(virtual, "--virtual"),
        run=run_cmd,
        file_out_dir=file_out_dir,
        send_files=list(send_file or []),
        file_share=file_share,
        max_file_size=max_file_size,
        file_spare=file_spare,
        clipboard_max=clipboard_max,
        record=record,
        record_dir=record_dir,
        audio=audio,
        audio_frame_ms=audio_frame_ms,
    )
    try:
        run(serve(opts))
    except (StoreError, SourceError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")


@app.command()
def connect(
    target: Annotated[str, typer.Argument(help="HOST[:PORT] of a wavry host")],
    headless: Annotated[
        bool, typer.Option("--headless", help="No window: decode and measure only")
    ] = False,
    seconds: Annotated[float | None, typer.Option(min=0.1, help="Stop after N seconds")] = None,
    stats_json: Annotated[
        Path | None, typer.Option("--stats-json", help="Write session statistics here at the end")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option("--snapshot", help="Save the last frame as PNG at the end")
    ] = None,
    fullscreen: Annotated[bool, typer.Option("--fullscreen")] = False,
    vsync: Annotated[bool, typer.Option("--vsync", help="Wait for vertical sync")] = False,
    pair_code: Annotated[str | None, typer.Option(help="Pairing code shown by the host")] = None,
    host_id: Annotated[str | None, typer.Option(help="Expected Wavry ID of the host")] = None,
    timeout: Annotated[float, typer.Option(min=0.5, help="Seconds to wait for a session")] = 10.0,
    live: Annotated[bool, typer.Option("--live-stats", help="Print stats every second")] = False,
    monitor: Annotated[
        int | None, typer.Option(help="Ask the host to show this monitor (see its list)")
    ] = None,
    send_file: Annotated[
        list[Path] | None,
        typer.Option("--send-file", help="Send this file to the host (repeatable)"),
    ] = None,
    file_out_dir: Annotated[
        Path | None,
        typer.Option(help="Where files from the host land (default: ~/Downloads/wavry)"),
    ] = None,
    file_share: FileShareOpt = 0.15,
    max_file_size: Annotated[
        int, typer.Option(min=0, help="Largest file accepted from the host, in bytes")
    ] = 4 * 1024**3,
    file_spare: FileSpareOpt = True,
    clipboard_max: ClipboardMaxOpt = 1 << 20,
    record: RecordOpt = False,
    record_dir: RecordDirOpt = None,
    no_audio: Annotated[
        bool, typer.Option("--no-audio", help="Do not play the host's audio")
    ] = False,
    mic: Annotated[
        bool, typer.Option("--mic", help="Send this machine's default microphone to the host")
    ] = False,
    hwdecode: Annotated[
        str | None,
        typer.Option(
            help="Hardware video decode: auto, or a device type (cuda, vaapi, qsv…); "
            "falls back to software with the reason in the stats"
        ),
    ] = None,
) -> None:
    """See and control a host: the screen in a window, keyboard and mouse back."""
    from wavry.runtime.connect import ConnectOptions, run_connect
    from wavry.runtime.session import SessionFailed

    host_addr, port = _addr(target)
    opts = ConnectOptions(
        host=host_addr,
        port=port,
        headless=headless,
        seconds=seconds,
        stats_json=stats_json,
        snapshot=snapshot,
        fullscreen=fullscreen,
        vsync=vsync,
        pair_code=pair_code,
        host_id=host_id,
        timeout=timeout,
        live_stats=live,
        monitor=monitor,
        send_files=list(send_file or []),
        file_out_dir=file_out_dir,
        file_share=file_share,
        max_file_size=max_file_size,
        file_spare=file_spare,
        clipboard_max=clipboard_max,
        record=record,
        record_dir=record_dir,
        audio=not no_audio,
        mic=mic,
        hwdecode=hwdecode,
    )
    try:
        summary, ended = run(run_connect(opts))
    except SessionFailed as exc:
        fail(str(exc))
    except (StoreError, ConnectionError) as exc:
        fail(str(exc))
    lat = summary["e2e_latency_ms"]
    typer.echo(
        f"{summary['frames_presented']} frames presented, {summary['frames_dropped']} dropped; "
        f"end-to-end p50 {lat['p50']} ms, p95 {lat['p95']} ms"
    )
    if ended:
        fail(f"session ended: {ended}")


@app.command()
def ping(
    target: Annotated[str, typer.Argument(help="HOST[:PORT] of a wavry host")],
    count: Annotated[int, typer.Option(min=1, max=100000)] = 5,
    interval: Annotated[float, typer.Option(min=0.0, help="Seconds between pings")] = 0.2,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    pair_code: Annotated[str | None, typer.Option(help="Pairing code shown by the host")] = None,
    host_id: Annotated[str | None, typer.Option(help="Expected Wavry ID of the host")] = None,
    timeout: Annotated[float, typer.Option(min=0.5, help="Seconds to wait for a session")] = 10.0,
) -> None:
    """Handshake with a host, say Hello, and measure round trips."""
    from wavry.runtime.ping import PingFailed
    from wavry.runtime.ping import ping as do_ping

    host_addr, port = _addr(target)
    try:
        result = run(
            do_ping(
                host_addr,
                port,
                count,
                interval,
                timeout=timeout,
                pair_code=pair_code,
                host_id=host_id,
                progress=not json_out,
            )
        )
    except PingFailed as exc:
        fail(str(exc))
    except (StoreError, ConnectionError) as exc:
        fail(str(exc))
    data = result.as_json()
    if json_out:
        typer.echo(json.dumps(data, indent=2))
    else:
        r = data["rtt_ms"]
        off = data["clock_offset_ms"]
        typer.echo(f"host {data['address']}  id {data['host_id']}  name {data['host_name']!r}")
        typer.echo(f"handshake {data['handshake_ms']:.2f} ms")
        typer.echo(
            f"{data['sent']} pings, {data['received']} pongs"
            + (
                f"; rtt min {r['min']:.3f} / p50 {r['p50']:.3f} / p95 {r['p95']:.3f} ms"
                if data["received"]
                else ""
            )
        )
        typer.echo(f"clock offset (host - client) {off:.3f} ms" if off is not None else "")
    if data["received"] != data["sent"]:
        raise typer.Exit(1)


@pins_app.command("list")
def pins_list() -> None:
    """Show pinned host identities."""
    try:
        pins = KnownHosts().load()
    except StoreError as exc:
        fail(str(exc))
    if not pins:
        typer.echo("no pinned hosts")
    for p in pins.values():
        when = datetime.fromtimestamp(p.first_seen, UTC).strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(f"{p.address}  {p.wavry_id}  (first seen {when})")


@pins_app.command("forget")
def pins_forget(address: Annotated[str, typer.Argument(help="HOST:PORT as pinned")]) -> None:
    """Forget the pinned identity of a host address."""
    host_addr, port = _addr(address)
    from wavry.net.addr import format_hostport

    key = format_hostport(host_addr, port)
    try:
        removed = KnownHosts().forget(key)
    except StoreError as exc:
        fail(str(exc))
    if not removed:
        fail(f"no pin for {key} (see `wavry pins list`)")
    typer.echo(f"forgot the pinned identity of {key}")


@trust_app.command("list")
def trust_list() -> None:
    """Show the clients this host trusts."""
    try:
        devices = TrustedDevices().load()
    except StoreError as exc:
        fail(str(exc))
    if not devices:
        typer.echo("no trusted devices (clients pair with the code `wavry host` shows)")
    for d in devices:
        when = datetime.fromtimestamp(d.added, UTC).strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(f"{d.wavry_id}  {d.name or '?'}  (paired {when})")


@trust_app.command("remove")
def trust_remove(
    wavry_id: Annotated[str, typer.Argument(help="Wavry ID to stop trusting")],
) -> None:
    """Stop trusting a client (it must pair again)."""
    try:
        removed = TrustedDevices().remove(wavry_id)
    except StoreError as exc:
        fail(str(exc))
    if not removed:
        fail(f"{wavry_id} is not in the trusted list")
    typer.echo(f"removed {wavry_id}; restart `wavry host` for running sessions to notice")


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(min=1.0, help="How long to run")] = 10.0,
) -> None:
    """Run a host and a client on loopback and print live session statistics."""
    from wavry.runtime.demo import DemoFailed, run_demo

    try:
        code = run(run_demo(seconds))
    except DemoFailed as exc:
        fail(str(exc))
    raise typer.Exit(code)


@bench_app.command("transport")
def bench_transport(
    json_file: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer iterations")] = False,
) -> None:
    """Handshakes/s, seal+open, and per-datagram receive cost next to raw floors."""
    from wavry.bench.transport import run_transport_bench

    results = run_transport_bench(quick=quick)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(results, indent=2) + "\n")
        typer.echo(f"wrote {json_file}")


@bench_app.command("net")
def bench_net(
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write results here (PNG plots next to it)")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Short runs (under 5 minutes)")] = False,
) -> None:
    """Synthetic video through real sessions over lossy, jittery and bottlenecked links."""
    from wavry.bench.net import run_net_bench

    run_net_bench(quick=quick, json_file=json_file)


@bench_app.command("latency")
def bench_latency(
    json_file: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Shorter runs")] = False,
) -> None:
    """Glass-to-glass latency from the synthetic marker: floor, wavry headless+windowed, aiortc."""
    from wavry.bench.latency import bench_latency_command

    bench_latency_command(json_file, quick)


@bench_app.command("extras")
def bench_extras(
    json_file: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="256 MiB file, fewer changes")] = False,
) -> None:
    """Files (1 GiB while video streams), clipboard latency (X11, Wayland), audio if present."""
    from wavry.bench.extras import run_extras_command

    run_extras_command(quick, json_file)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except asyncio.CancelledError:
        sys.exit(130)
