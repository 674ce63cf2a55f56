"""Sessions: `wavry host`, `wavry connect`, `wavry ping`.

Every option defaults to "not given" (None) so that the config file and `WAVRY_HOST_*` /
`WAVRY_CONNECT_*` variables can supply it (docs/cli.md); the defaults are the settings models'.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from wavry.cli.common import fail, human, parse_addr, say, settings, write_json
from wavry.net.loop import run
from wavry.settings_types import DEFAULT_PORT, CaptureMode, CodecName, SourceName, TrustMode
from wavry.store import StoreError

if TYPE_CHECKING:
    from wavry.client.eventlines import EventChannel

# Options `wavry host` and `wavry connect` share (one definition each).
FileOutDirOpt = Annotated[
    Path | None,
    typer.Option(help="Where files from the peer land (default: ~/Downloads/wavry)"),
]
FileShareOpt = Annotated[
    float | None,
    typer.Option(help="File transfer share of the video bitrate, 0.01..1 (default: 0.15)"),
]
FileSpareOpt = Annotated[
    bool | None,
    typer.Option(
        "--file-spare/--no-file-spare",
        help="Let files use spare path capacity beyond --file-share (default: on; docs/files.md)",
        show_default=False,
    ),
]
MaxFileSizeOpt = Annotated[
    int | None,
    typer.Option(help="Largest file accepted from the peer, in bytes (default: 4 GiB)"),
]
ClipboardMaxOpt = Annotated[
    int | None, typer.Option(help="Largest clipboard text synced, in bytes (default: 1 MiB)")
]
RecordOpt = Annotated[
    bool | None,
    typer.Option(
        "--record/--no-record",
        help="Record the stream to MP4, no re-encoding (default: off)",
        show_default=False,
    ),
]
RecordDirOpt = Annotated[
    Path | None, typer.Option(help="Where recordings go (default: ~/Videos/wavry)")
]
SendFileOpt = Annotated[
    list[Path] | None,
    typer.Option("--send-file", help="Send this file to the peer (repeatable)"),
]
FpsOpt = Annotated[int | None, typer.Option(help="Frames per second, 1..240 (default: 60)")]
BitrateOpt = Annotated[
    int | None,
    typer.Option(help="Start bitrate in kbit/s; congestion control adapts it (default: 8000)"),
]
MaxBitrateOpt = Annotated[
    int | None,
    typer.Option(help="Highest bitrate congestion control may reach, kbit/s (default: 2× start)"),
]


def host(
    listen: Annotated[
        str | None,
        typer.Option(
            help=f"UDP ADDR:PORT to listen on, port 0 = any (default: 0.0.0.0:{DEFAULT_PORT})"
        ),
    ] = None,
    trust: Annotated[
        TrustMode | None,
        typer.Option(help="paired: only trusted devices (default); any: everyone (labs/tests)"),
    ] = None,
    pair: Annotated[
        bool | None,
        typer.Option("--pair/--no-pair", help="Show a pairing code right away", show_default=False),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Name shown to clients and at the gateway (default: hostname)"),
    ] = None,
    source: Annotated[
        SourceName | None,
        typer.Option(
            help="Picture source (default: X11 with --display or DISPLAY, else the Wayland portal)"
        ),
    ] = None,
    display: Annotated[
        str | None, typer.Option(help="X display to capture, e.g. :0 (implies --source x11)")
    ] = None,
    monitor: Annotated[int | None, typer.Option(help="Monitor id to capture")] = None,
    virtual: Annotated[
        bool | None,
        typer.Option(
            "--virtual/--no-virtual",
            help="Stream a private virtual display (X11: Xvfb) at --size, or at the client's "
            "size when --size is not given; with --source wayland a GNOME virtual monitor",
            show_default=False,
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="WxH of the synthetic source or virtual display (default: 1280x720)"),
    ] = None,
    run_cmd: Annotated[
        str | None, typer.Option("--run", help="Command to start on the virtual display")
    ] = None,
    capture: Annotated[
        CaptureMode | None,
        typer.Option(
            help="When to capture the screen: change (X11: when something changes, at most "
            "--fps; a still screen costs nothing) or clock (every frame interval) "
            "(default: change)"
        ),
    ] = None,
    codec: Annotated[CodecName | None, typer.Option(help="Preferred codec (default: h264)")] = None,
    bitrate_kbps: BitrateOpt = None,
    max_bitrate_kbps: MaxBitrateOpt = None,
    fps: FpsOpt = None,
    send_file: SendFileOpt = None,
    file_out_dir: FileOutDirOpt = None,
    file_share: FileShareOpt = None,
    max_file_size_bytes: MaxFileSizeOpt = None,
    file_spare: FileSpareOpt = None,
    clipboard_max_bytes: ClipboardMaxOpt = None,
    record: RecordOpt = None,
    record_dir: RecordDirOpt = None,
    audio: Annotated[
        str | None,
        typer.Option(
            help="Sound to stream: system (the mix), source:NAME, app:NAME or off "
            "(default: system when PipeWire/PulseAudio answers)"
        ),
    ] = None,
    mic: Annotated[
        bool | None,
        typer.Option(
            "--mic/--no-mic",
            help="Play a client's microphone here (default: on)",
            show_default=False,
        ),
    ] = None,
    audio_frame_ms: Annotated[
        int | None, typer.Option(help="Opus frame duration: 5 or 10 ms (default: 10)")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(
            help="Be online at this gateway, reachable as `wavry connect NAME` (default: the "
            "gateway `wavry login` signed in to; off: none)"
        ),
    ] = None,
    mdns: Annotated[
        bool | None,
        typer.Option(
            "--mdns/--no-mdns",
            help="Advertise this host on the LAN (mDNS) (default: on)",
            show_default=False,
        ),
    ] = None,
    upnp: Annotated[
        bool | None,
        typer.Option(
            "--upnp/--no-upnp",
            help="Ask the router for a port mapping (UPnP-IGD) while online at a gateway "
            "(default: on)",
            show_default=False,
        ),
    ] = None,
    web: Annotated[
        str | None,
        typer.Option(
            is_flag=False,
            flag_value="",
            metavar="[ADDR:PORT]",
            help="Also serve browser clients: the page, WebTransport and WebSocket "
            "(default ADDR: the --listen address, port 47801; docs/browser.md)",
        ),
    ] = None,
) -> None:
    """Share this machine: accept sessions and stream the screen to clients.

    With --gateway (or after `wavry login`) the host is online at the gateway under --name
    and clients of the account connect with `wavry connect NAME` (docs/connecting.md)."""
    from wavry.host import HostError, OptionsError, options_from_settings, serve
    from wavry.runtime.sources import SourceError
    from wavry.settings import HostSettings

    s = settings(
        HostSettings,
        listen=listen,
        trust=trust,
        pair=pair,
        name=name,
        source=source,
        display=display,
        monitor=monitor,
        virtual=virtual,
        size=size,
        run=run_cmd,
        codec=codec,
        bitrate_kbps=bitrate_kbps,
        max_bitrate_kbps=max_bitrate_kbps,
        fps=fps,
        send_file=send_file or None,
        file_out_dir=file_out_dir,
        file_share=file_share,
        max_file_size_bytes=max_file_size_bytes,
        file_spare=file_spare,
        clipboard_max_bytes=clipboard_max_bytes,
        record=record,
        record_dir=record_dir,
        audio=audio,
        mic=mic,
        audio_frame_ms=audio_frame_ms,
        gateway=gateway,
        mdns=mdns,
        upnp=upnp,
        capture=capture,
        web=web,
    )
    from wavry.web.errors import WebError

    try:
        opts = options_from_settings(s)
    except OptionsError as exc:
        fail(str(exc), 2)
    from wavry.connectivity.presence import PresenceError

    try:
        run(serve(opts))
    except (StoreError, SourceError, HostError, WebError, PresenceError) as exc:
        fail(str(exc))


def connect(
    target: Annotated[
        str | None,
        typer.Argument(
            help="HOST[:PORT], a host NAME of your account (USER/NAME: shared with you), or "
            "nothing: pick from the hosts on the LAN and the account's",
            metavar="TARGET",
        ),
    ] = None,
    headless: Annotated[
        bool | None,
        typer.Option(
            "--headless/--window", help="No window: decode and measure only", show_default=False
        ),
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after N seconds")] = None,
    stats_json: Annotated[
        str | None,
        typer.Option(
            "--stats-json", help="Write session statistics to FILE at the end (- = stdout)"
        ),
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option("--snapshot", help="Save the last frame as PNG at the end")
    ] = None,
    fullscreen: Annotated[
        bool | None,
        typer.Option("--fullscreen/--no-fullscreen", show_default=False, help="Start fullscreen"),
    ] = None,
    vsync: Annotated[
        bool | None,
        typer.Option(
            "--vsync/--no-vsync", help="Wait for vertical sync (default: off)", show_default=False
        ),
    ] = None,
    pair_code: Annotated[
        str | None, typer.Option(help="Pairing code shown by the host (e.g. 123 456)")
    ] = None,
    host_id: Annotated[str | None, typer.Option(help="Expected Wavry ID of the host")] = None,
    timeout_seconds: Annotated[
        float | None, typer.Option(help="Seconds to wait for a session (default: 10)")
    ] = None,
    live_stats: Annotated[
        bool | None,
        typer.Option(
            "--live-stats/--no-live-stats",
            help="Print statistics of the last second, every second (default: on)",
            show_default=False,
        ),
    ] = None,
    monitor: Annotated[
        int | None, typer.Option(help="Ask the host to show this monitor (see its list)")
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option(help="Largest picture WxH to ask the host for (default: the screen)"),
    ] = None,
    fps: Annotated[
        int | None, typer.Option(help="Highest frame rate to ask the host for, 1..240")
    ] = None,
    bitrate_kbps: Annotated[
        int | None,
        typer.Option(
            help="Highest bitrate to ask the host for, kbit/s (its rate control may go lower)"
        ),
    ] = None,
    max_bitrate_kbps: Annotated[
        int | None, typer.Option(help="Same as --bitrate-kbps; wins when both are given")
    ] = None,
    send_file: SendFileOpt = None,
    file_out_dir: FileOutDirOpt = None,
    file_share: FileShareOpt = None,
    max_file_size_bytes: MaxFileSizeOpt = None,
    file_spare: FileSpareOpt = None,
    clipboard_max_bytes: ClipboardMaxOpt = None,
    record: RecordOpt = None,
    record_dir: RecordDirOpt = None,
    audio: Annotated[
        bool | None,
        typer.Option(
            "--audio/--no-audio", help="Play the host's sound (default: on)", show_default=False
        ),
    ] = None,
    mic: Annotated[
        str | None,
        typer.Option(
            help="Microphone to send to the host: off, default or source:NAME (default: off)"
        ),
    ] = None,
    hwdecode: Annotated[
        str | None,
        typer.Option(
            help="Hardware video decode: auto, or a device type (cuda, vaapi, qsv…); "
            "falls back to software with the reason in the stats"
        ),
    ] = None,
    events_json: Annotated[
        str | None,
        typer.Option(
            "--events-json",
            help="For programs that drive the session: report it as JSON lines to FILE "
            "(- = stdout) and read answers (pairing code, identity, stop) from stdin; the end "
            "of stdin ends the session (docs/client.md)",
        ),
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(
            help="Gateway to find host NAMEs at (default: the one `wavry login` signed in to)"
        ),
    ] = None,
) -> None:
    """See and control a host: its screen in a window, keyboard, mouse and gamepads back.

    TARGET is an address, or the name of a host of your account found through the gateway
    (docs/connecting.md); the session is the same either way.

    Window hotkeys (hold Ctrl+Alt+Shift): S statistics overlay, X fullscreen, Z pointer lock,
    P pause/resume and C cancel outgoing file transfers, Q quit. A hotkey sends nothing to the
    host.
    """
    from wavry.client.live import startup_line, totals_line
    from wavry.client.runtime import Interrupted
    from wavry.connectivity.dial import is_host_name
    from wavry.runtime.connect import connect_target
    from wavry.runtime.session import SessionFailed
    from wavry.settings import ConnectSettings

    if target is not None and not is_host_name(target):
        parse_addr(target)  # a bad address is a usage error
    s = settings(
        ConnectSettings,
        headless=headless,
        seconds=seconds,
        stats_json=stats_json,
        snapshot=snapshot,
        fullscreen=fullscreen,
        vsync=vsync,
        pair_code=pair_code,
        host_id=host_id,
        timeout_seconds=timeout_seconds,
        live_stats=live_stats,
        monitor=monitor,
        resolution=resolution,
        fps=fps,
        bitrate_kbps=bitrate_kbps,
        max_bitrate_kbps=max_bitrate_kbps,
        send_file=send_file or None,
        file_out_dir=file_out_dir,
        file_share=file_share,
        max_file_size_bytes=max_file_size_bytes,
        file_spare=file_spare,
        clipboard_max_bytes=clipboard_max_bytes,
        record=record,
        record_dir=record_dir,
        audio=audio,
        mic=mic,
        hwdecode=hwdecode,
        gateway=gateway,
    )
    if events_json == "-" and s.stats_json == "-":
        fail("--events-json - and --stats-json - both want stdout: give one of them a FILE", 2)
    channel = _event_channel(events_json)
    # human lines leave stdout to whichever JSON is written there
    json_target = "-" if events_json == "-" else s.stats_json
    try:
        if channel is None:
            result = run(connect_target(target, s))
        else:
            from wavry.client.eventlines import run_with_events

            events = channel
            result = run(connect_target(target, s, lambda o: run_with_events(o, events)))
    except Interrupted:
        if channel is not None:
            channel.emit("ended", ended="", summary={})
        _exit_at_once(130)
    except (SessionFailed, StoreError, ConnectionError) as exc:
        if channel is None:
            fail(str(exc))
        channel.emit("error", message=str(exc))
        typer.echo(f"error: {exc}", err=True)
        _exit_at_once(1)  # not through interpreter teardown: the stdin reader thread is blocked
    summary = result.summary
    if channel is not None:
        channel.emit("ended", ended="" if result.interrupted else result.ended, summary=summary)
    if summary["frames_presented"]:
        say(startup_line(summary["startup"]), json_target)
    say(totals_line(summary), json_target)
    code = 130 if result.interrupted else 0
    if result.ended and not result.interrupted:
        typer.echo(f"error: session ended: {result.ended}", err=True)
        code = 1
    _exit_at_once(code)


def _event_channel(target: str | None) -> EventChannel | None:
    """`--events-json`: events to stdout or FILE (line-buffered), answers from stdin."""
    if target is None:
        return None
    from wavry.client.eventlines import EventChannel

    if target == "-":
        return EventChannel(sys.stdout, sys.stdin.buffer)
    try:
        out = open(target, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed at exit)
    except OSError as exc:
        fail(f"cannot write --events-json {target}: {exc.strerror}", 2)
    return EventChannel(out, sys.stdin.buffer)


def _exit_at_once(code: int) -> NoReturn:
    """End `wavry connect` the moment the session is over: everything is written and closed,
    and Python's own teardown of the CLI's imports (gateway, relay, FastAPI, SQLAlchemy) takes
    0.7–1.6 s on a busy 2-core machine — too long for a Ctrl+C."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def ping(
    target: Annotated[str, typer.Argument(help="HOST[:PORT] of a wavry host", metavar="TARGET")],
    count: Annotated[int, typer.Option(min=1, max=100000, help="Pings to send")] = 5,
    interval_ms: Annotated[float, typer.Option(min=0.0, help="Milliseconds between pings")] = 200.0,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the result as JSON to FILE (- = stdout)")
    ] = None,
    pair_code: Annotated[str | None, typer.Option(help="Pairing code shown by the host")] = None,
    host_id: Annotated[str | None, typer.Option(help="Expected Wavry ID of the host")] = None,
    timeout_seconds: Annotated[
        float, typer.Option(min=0.5, help="Seconds to wait for a session")
    ] = 10.0,
) -> None:
    """Handshake with a host, say Hello, and measure round trips."""
    from wavry.runtime.ping import PingFailed
    from wavry.runtime.ping import ping as do_ping

    host_addr, port = parse_addr(target)
    try:
        result = run(
            do_ping(
                host_addr,
                port,
                count,
                interval_ms / 1000,
                timeout=timeout_seconds,
                pair_code=pair_code,
                host_id=host_id,
                progress=human(json_out),
            )
        )
    except PingFailed as exc:
        fail(str(exc))
    except (StoreError, ConnectionError) as exc:
        fail(str(exc))
    data = result.as_json()
    write_json(json_out, data)
    r = data["rtt_ms"]
    off = data["clock_offset_ms"]
    say(f"host {data['address']}  id {data['host_id']}  name {data['host_name']!r}", json_out)
    say(f"handshake {data['handshake_ms']:.2f} ms", json_out)
    say(
        f"{data['sent']} pings, {data['received']} pongs"
        + (
            f"; rtt min {r['min']:.3f} / p50 {r['p50']:.3f} / p95 {r['p95']:.3f} ms"
            if data["received"]
            else ""
        ),
        json_out,
    )
    if off is not None:
        say(f"clock offset (host - client) {off:.3f} ms", json_out)
    if data["received"] != data["sent"]:
        raise typer.Exit(1)


def discover(
    seconds: Annotated[
        float, typer.Option(min=0.2, max=60.0, help="How long to listen for answers")
    ] = 1.5,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the list as JSON to FILE (- = stdout)")
    ] = None,
) -> None:
    """Wavry hosts on this LAN (mDNS `_wavry._udp.local.`): name, Wavry ID, address."""
    from wavry.connectivity.mdns import discover as lan_hosts
    from wavry.net.addr import format_hostport

    hosts = run(lan_hosts(seconds))
    write_json(json_out, [h.to_json() for h in hosts])
    if not hosts:
        say(f"no Wavry host answered on this LAN within {seconds:g} s", json_out)
    for h in hosts:
        where = ", ".join(format_hostport(a, h.port) for a in h.addresses)
        say(f"{h.name:24} {h.wavry_id}  {where}", json_out)
