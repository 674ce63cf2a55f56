"""`wavry host`: serve RIFT sessions (control messages; media sources plug in later)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from wavry.files.transfer import (
    CLIPBOARD_FILENAME,
    DEFAULT_CLIPBOARD_MAX,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_SHARE,
    FileReceiver,
    FileTransfers,
    Outgoing,
    Role,
    SenderState,
    SpareCapacity,
    TransferError,
    default_download_dir,
    path_is_clean,
    sha256_file,
)
from wavry.media.audio_session import HostAudio, default_audio_spec
from wavry.media.encode import EncodedFrame
from wavry.media.record import Recorder, RecorderError, default_record_dir
from wavry.media.types import Capture, CapturedFrame, CaptureError
from wavry.net.addr import format_hostport
from wavry.net.host import HostServer
from wavry.platform.audio import AudioSpec
from wavry.platform.clipboard import (
    ClipboardError,
    clipboard_message,
    clipboard_text_budget,
    open_clipboard,
    text_from_message,
)
from wavry.platform.gamepad_uinput import VirtualGamepads
from wavry.platform.gamepad_uinput import probe as gamepad_probe
from wavry.platform.input import InjectionError
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.config import HostConfig
from wavry.rift.host import HostEndpoint
from wavry.rift.transport import KeyframeRequested, RateChanged, SkipFramesRequested
from wavry.runtime.injection import InjectorSink, injector_for
from wavry.runtime.sources import (
    NO_SOURCE_HELP,
    SourceError,
    detect_source,
    open_source,
    source_size,
)
from wavry.runtime.streamer import CODEC_FROM_RIFT, Streamer
from wavry.settings import HostSettings, TrustMode
from wavry.store import TrustedDevices, load_or_create_identity

TRUST_ANY_WARNING = (
    "WARNING: --trust any accepts every client that connects, without pairing. "
    "Use it only in labs and tests."
)


@dataclass(slots=True)
class HostOptions:
    listen: tuple[str, int] = ("0.0.0.0", 47800)
    trust_any: bool = False
    pair: bool = False
    name: str = ""
    config_dir: Path | None = None
    source: str | None = None  # synthetic | x11 | wayland | virtual; None = detect
    codec: str = "h264"
    bitrate_kbps: int = 8000
    max_bitrate_kbps: int | None = None  # DELTA's ceiling; None = 2 × bitrate_kbps
    fps: int = 60
    width: int = 1280  # synthetic source size
    height: int = 720
    display: str | None = None
    monitor: int | None = None
    virtual: tuple[int, int] | None = None
    run: str | None = None
    file_out_dir: Path | None = None  # None: default_download_dir()
    send_files: list[Path] = field(default_factory=list)
    file_share: float = DEFAULT_SHARE
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    file_spare: bool = True  # files may use spare path capacity beyond file_share
    clipboard_max: int = DEFAULT_CLIPBOARD_MAX
    record: bool = False
    record_dir: Path | None = None  # None: default_record_dir()
    audio: str | None = None  # --audio system|mic|source:NAME|app:NAME|off; None: system if a
    # PipeWire/Pulse server answers, else off
    audio_frame_ms: int = 10  # Opus frame: 5 or 10 ms
    mic: bool = True  # play a client's microphone on this machine


def options_from_settings(s: HostSettings, config_dir: Path | None = None) -> HostOptions:
    """The runtime's options from validated settings (docs/cli.md)."""
    source = s.source.value if s.source is not None else None
    if source is None and s.display is not None:
        source = "x11"  # --display names an X display: capture it
    if s.virtual:
        source = "virtual"
    size = s.size_pixels
    virtual = (size or (1280, 720)) if source == "virtual" else None
    width, height = size or (1280, 720)
    bitrate = s.bitrate_kbps or 8000
    return HostOptions(
        listen=s.listen_addr,
        trust_any=s.trust is TrustMode.any,
        pair=s.pair,
        name=s.name,
        config_dir=config_dir,
        source=source,
        codec=s.codec.value,
        bitrate_kbps=bitrate,
        max_bitrate_kbps=s.max_bitrate_kbps,
        fps=s.fps or 60,
        width=width,
        height=height,
        display=s.display,
        monitor=s.monitor,
        virtual=virtual,
        run=s.run,
        file_out_dir=s.file_out_dir,
        send_files=list(s.send_file),
        file_share=s.file_share,
        max_file_size=s.max_file_size_bytes,
        file_spare=s.file_spare,
        clipboard_max=s.clipboard_max_bytes,
        record=s.record,
        record_dir=s.record_dir,
        audio=s.audio,
        audio_frame_ms=s.audio_frame_ms,
        mic=s.mic,
    )


FILE_TICK_S = 0.01


def _format_code(code: str) -> str:
    return f"{code[:3]} {code[3:]}"


_CODECS: dict[str, int] = {"h264": rift_pb2.H264, "hevc": rift_pb2.HEVC, "av1": rift_pb2.AV1}


class HostRuntime:
    """Wires a HostEndpoint to a socket, the trusted-devices file, the picture source and the
    console."""

    def __init__(self, opts: HostOptions, out: TextIO = sys.stdout) -> None:
        self.opts = opts
        self.out = out
        self.identity = load_or_create_identity(opts.config_dir)
        self.trusted = TrustedDevices(opts.config_dir)
        name = opts.name or socket.gethostname()
        if opts.codec not in _CODECS:
            raise SourceError(f"unknown codec {opts.codec!r} (h264, hevc, av1)")
        preferred = _CODECS[opts.codec]
        codecs = [preferred] + [
            c for c in (rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1) if c != preferred
        ]
        self.source = detect_source(opts.source, opts.virtual)
        self.capture: Capture | None = None
        self.capture_size = (opts.width, opts.height)
        self.source_problem = ""
        if self.source is not None:
            try:
                self.capture = open_source(
                    self.source.name,
                    width=opts.width,
                    height=opts.height,
                    fps=opts.fps,
                    display=opts.display,
                    monitor=opts.monitor,
                    virtual=opts.virtual,
                    run=opts.run,
                )
                self.capture_size = source_size(self.capture)
            except SourceError as exc:
                if opts.source is not None or opts.virtual is not None:
                    raise  # asked for explicitly: a clear error
                # detected, not asked for: keep serving sessions and say why there is no picture
                self.source_problem = f"{exc} ({self.source.reason})"
                self.source = None
                self.capture = None
        width, height = self.capture_size if self.capture is not None else (opts.width, opts.height)
        config = HostConfig(
            name=name,
            trust_any=opts.trust_any,
            codecs=codecs,
            width=width,
            height=height,
            fps=opts.fps,
            initial_bitrate_kbps=opts.bitrate_kbps,
        )
        config.transport.initial_bitrate_kbps = opts.bitrate_kbps
        # DELTA may raise the bitrate when the path allows, up to a ceiling that still makes
        # sense for the picture (more only costs encode/decode time and latency).
        config.transport.max_bitrate_kbps = opts.max_bitrate_kbps or 2 * opts.bitrate_kbps
        config.transport.fps = opts.fps
        self.endpoint = HostEndpoint(self.identity, config, trusted=self.trusted.ids())
        if self.capture is not None:
            self.endpoint.monitors = list(self._monitors(width, height))
        self.server = HostServer(self.endpoint, on_event=self._on_event)
        self.bound: tuple[str, int] | None = None
        self.on_message: Callable[[int, rift_pb2.Message], None] | None = None
        self.streamer: Streamer | None = None
        self._announced_encoder: str | None = None
        self._stopping: asyncio.Future[None] | None = None
        self.viewers: set[int] = set()
        self.injector: InjectorSink | None = None
        self.gamepads: VirtualGamepads | None = None
        self._gamepad_note = False
        self.clipboard: Any = None  # ClipboardSync | WlClipboardSync
        self._latency: list[float] = []
        self._latency_log_at = 0.0
        self.file_receiver = FileReceiver(
            opts.file_out_dir or default_download_dir(), Role.HOST, max_size=opts.max_file_size
        )
        self.files: dict[int, FileTransfers] = {}
        self._file_task: asyncio.Task[None] | None = None
        self._progress_at = 0.0
        self._reported: set[int] = set()
        self._offer_tasks: set[asyncio.Task[None]] = set()
        self._digests: dict[tuple[str, int, int], str] = {}
        self.recorder: Recorder | None = None
        if opts.record:
            self.recorder = Recorder(
                opts.record_dir or default_record_dir(),
                prefix="wavry-host",
                on_file=lambda p: self.say(f"recording saved: {p}"),
            )
        self.audio_note = ""
        if opts.audio is None:
            audio_spec, self.audio_note = default_audio_spec()
        else:
            audio_spec = AudioSpec.parse(opts.audio)
        self.audio = HostAudio(audio_spec, self.say, frame_ms=opts.audio_frame_ms)
        if self.recorder is not None:
            self.recorder.audio = audio_spec.kind != "off"  # an Opus track next to the video

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def start(self) -> tuple[str, int]:
        host, port = self.opts.listen
        self.bound = await self.server.start(host, port)
        b = format_hostport(*self.bound)
        self.say(f'Wavry host "{self.endpoint.config.name}"')
        self.say(f"  Wavry ID: {self.identity.wavry_id}")
        self.say(f"  RIFT host listening on udp://{b}")
        shown = self.bound[0]
        if shown in ("0.0.0.0", "::"):
            shown = "<this machine's address>"
        self.say(f"  connect with: wavry connect {format_hostport(shown, self.bound[1])}")
        if self.opts.trust_any:
            self.say(TRUST_ANY_WARNING)
        else:
            n = len(self.endpoint.trusted)
            self.say(
                f"  trust: paired devices only ({n} trusted); unknown clients must enter a "
                "pairing code"
            )
        if self.source is None:
            if self.source_problem:
                self.say(f"  picture source unavailable: {self.source_problem}")
            self.say(f"  {NO_SOURCE_HELP}")
        else:
            w, h = self.endpoint.config.width, self.endpoint.config.height
            self.say(
                f"  picture: {self.source.name} {w}x{h}@{self.opts.fps} ({self.source.reason})"
            )
        if self.audio.spec.kind == "off":
            self.say(f"  audio: off{f' ({self.audio_note})' if self.audio_note else ''}")
        else:
            self.say(f"  audio: {self.audio.spec} (captured while a client is connected)")
        if self.opts.pair:
            self.endpoint.issue_pairing_code(self.server._clock())
            self.server.flush()
        return self.bound

    def _monitors(self, width: int, height: int) -> list[rift_pb2.MonitorInfo]:
        if self.source is not None and self.source.name == "x11":
            from wavry.media.x11 import list_monitors

            try:
                return [
                    rift_pb2.MonitorInfo(id=m.id, name=m.name, width=m.width, height=m.height)
                    for m in list_monitors(self.opts.display)
                ]
            except CaptureError:
                pass
        name = self.source.name if self.source else "screen"
        return [rift_pb2.MonitorInfo(id=0, name=name, width=width, height=height)]

    # ---- streaming -----------------------------------------------------------------

    def _start_stream(self, alias: int, ack: rift_pb2.HelloAck) -> None:
        self.viewers.add(alias)
        self.audio.start(asyncio.get_running_loop(), self._send_audio)
        stopping = self._stopping
        if stopping is not None and not stopping.done():
            # the previous stream still releases the capture: start once it has
            stopping.add_done_callback(lambda _f: self._start_stream_now(ack))
            return
        self._start_stream_now(ack)

    def _start_stream_now(self, ack: rift_pb2.HelloAck) -> None:
        if not self.viewers:
            return  # the viewer left while the previous stream was stopping
        if self.capture is None or self.streamer is not None:
            if self.streamer is not None:
                self.streamer.request_keyframe()  # the new viewer needs one
            return
        res = ack.stream_resolution
        self.streamer = Streamer(
            self.capture,
            CODEC_FROM_RIFT[ack.selected_codec],
            res.width,
            res.height,
            ack.fps,
            ack.initial_bitrate_kbps,
            self._send_frame,
            asyncio.get_running_loop(),
        )
        self.streamer.start()
        if self.streamer.encoder_name is not None and self._announced_encoder is None:
            self._announced_encoder = self.streamer.encoder_name
            self.say(f"  video encoder: {self.streamer.encoder_name} (see `wavry doctor`)")
        if self.injector is None and self.source is not None:
            try:
                self.injector = injector_for(self.source.name, self.capture, self.opts.display)
            except InjectionError as exc:
                self.say(f"  input from clients cannot be applied: {exc}")
            else:
                if self.injector is None:
                    self.say("  input from clients is ignored: the synthetic source has no desktop")
        self._start_clipboard()

    def _record(self, frame: CapturedFrame, encoded: EncodedFrame) -> None:
        if self.recorder is None or self.streamer is None:
            return
        enc = self.streamer.encoder
        try:
            self.recorder.write(
                encoded.data,
                keyframe=encoded.keyframe,
                timestamp_us=frame.capture_ts,
                codec=enc.codec,
                width=enc.width,
                height=enc.height,
            )
        except RecorderError as exc:
            self.say(f"recording stopped: {exc}")
            self.recorder = None

    def _close_recording(self) -> None:
        if self.recorder is not None:
            try:
                self.recorder.close()
            except RecorderError as exc:
                self.say(f"recording not finished: {exc}")
                self.recorder = None

    def _send_frame(self, frame: CapturedFrame, encoded: EncodedFrame) -> None:
        now = self.server._clock()
        self._record(frame, encoded)
        # encode_us on the wire covers everything from the end of capture until the frame
        # enters the transport (waiting for the encoder, encoding, the thread hand-off): the
        # client's jitter buffer then sees network jitter only, not this host's scheduling
        ready_us = time.time_ns() // 1000 - frame.capture_ts - frame.capture_us
        encode_us = max(encoded.encode_us, ready_us)
        for alias in list(self.viewers):
            try:
                self.endpoint.send_frame(
                    alias,
                    encoded.data,
                    now,
                    keyframe=encoded.keyframe,
                    timestamp_us=frame.capture_ts,
                    capture_us=frame.capture_us,
                    encode_us=encode_us,
                    on_batch=self.server.send_output,  # first chunks leave while sealing goes on
                )
            except KeyError:
                self.viewers.discard(alias)
        self.server.flush()
        streamer = self.streamer
        if streamer is not None and self.viewers:
            backlog = max(self.endpoint.media_backlog_s(a, now) for a in self.viewers)
            if backlog > 0:
                interval = 1 / max(1.0, streamer.encoder.fps)
                streamer.set_send_backlog(time.monotonic() + backlog - 0.5 * interval)

    def _send_audio(self, timestamp_us: int, packet: bytes) -> None:
        """One Opus packet to every viewer on the priority lane (never behind video)."""
        audio = rift_pb2.AudioPacket(timestamp_us=timestamp_us, payload=packet)
        msg = rift_pb2.Message(media=rift_pb2.MediaMessage(audio=audio))
        now = self.server._clock()
        for alias in list(self.viewers):
            try:
                self.endpoint.send_message(alias, msg, now)
            except KeyError:
                self.viewers.discard(alias)
        self.server.flush()
        if self.recorder is not None:
            try:
                self.recorder.write_audio(packet, timestamp_us=timestamp_us)
            except RecorderError as exc:
                self.say(f"recording stopped: {exc}")
                self.recorder = None

    def _stop_stream_if_idle(self) -> None:
        if self.viewers or self.streamer is None:
            return
        streamer, self.streamer = self.streamer, None
        self._stopping = asyncio.get_running_loop().run_in_executor(None, streamer.stop)
        self._close_recording()  # the next stream goes to a new file

    # ---- files ---------------------------------------------------------------------

    def _start_files(self, alias: int) -> None:
        ft = FileTransfers(
            Role.HOST,
            self.file_receiver,
            share=self.opts.file_share,
            max_datagram_size=self.endpoint.config.transport.max_datagram,
            peer=alias,
            spare=SpareCapacity(enabled=self.opts.file_spare),
        )
        self.files[alias] = ft
        loop = asyncio.get_running_loop()
        if self.opts.send_files:
            task = loop.create_task(self._offer_files(alias, ft))
            self._offer_tasks.add(task)
            task.add_done_callback(self._offer_tasks.discard)
        if self._file_task is None:
            self._file_task = loop.create_task(self._file_loop())

    async def _offer_files(self, alias: int, ft: FileTransfers) -> None:
        """Offer every --send-file to a new session; digests are computed in a thread (once per
        file version) so the event loop keeps streaming."""
        loop = asyncio.get_running_loop()
        for path in self.opts.send_files:
            try:
                st = path.stat()
                key = (str(path), st.st_size, st.st_mtime_ns)
                digest = self._digests.get(key)
                if digest is None:
                    digest = await loop.run_in_executor(None, sha256_file, path)
                    self._digests[key] = digest
                if self.files.get(alias) is not ft:
                    return  # the session ended meanwhile
                now = self.server._clock()
                sender, out = ft.send_file(path, now, digest)
            except (OSError, TransferError) as exc:
                self.say(f"session {alias:08x} cannot send {path}: {exc}")
                continue
            self.say(f"session {alias:08x} offering {sender.name} ({sender.size} bytes)")
            self._send_file_messages(alias, out, now)
            self.server.flush()

    def _send_file_messages(self, alias: int, out: list[Outgoing], now: float) -> None:
        s = self.endpoint.sessions.get(alias)
        if s is None:
            return
        for o in out:
            if o.bulk:
                s.transport.send_bulk(o.message, now)
            else:
                self.endpoint.send_message(alias, o.message, now)

    async def _file_loop(self) -> None:
        while True:
            await asyncio.sleep(FILE_TICK_S)
            now = self.server._clock()
            sent = False
            for alias, ft in list(self.files.items()):
                s = self.endpoint.sessions.get(alias)
                if s is None:
                    continue
                tr = s.transport
                clean = path_is_clean(tr.decision)
                out = ft.poll(now, tr.decision.target_bitrate_kbps, clean)
                if out:
                    self._send_file_messages(alias, out, now)
                    sent = True
                for sender in ft.senders.values():
                    if sender.done and sender.file_id not in self._reported:
                        self._reported.add(sender.file_id)
                        if sender.is_clipboard:
                            if sender.state is not SenderState.COMPLETE:
                                self.say(
                                    f"session {alias:08x} clipboard ({sender.size} bytes) not "
                                    f"synced: {sender.message}"
                                )
                            continue
                        verb = (
                            "sent" if sender.state is SenderState.COMPLETE else sender.state.value
                        )
                        self.say(f"session {alias:08x} {verb} {sender.name}: {sender.message}")
            if now >= self._progress_at:
                self._progress_at = now + 1.0
                for alias, ft in self.files.items():
                    for sender in ft.senders.values():
                        if sender.state is SenderState.SENDING and not sender.is_clipboard:
                            self.say(
                                f"session {alias:08x} sending {sender.name}: "
                                f"{sender.progress * 100:.0f} %"
                            )
            for peer, text in self.file_receiver.take_notices():
                self.say(f"session {peer:08x} {text}")
            for r in self.file_receiver.take_results():
                if r.name == CLIPBOARD_FILENAME:
                    self._clipboard_file_result(r.peer, r.ok, r.text, r.message)
                elif r.ok:
                    self.say(f"session {r.peer:08x} received {r.name} -> {r.path}")
                else:
                    self.say(f"session {r.peer:08x} file {r.name or '?'} not saved: {r.message}")
            if sent:
                self.server.flush()

    def _on_client_message(self, alias: int, msg: rift_pb2.Message) -> None:
        ft = self.files.get(alias)
        if ft is not None:
            now = self.server._clock()
            replies = ft.handle(msg, now)
            if replies is not None:
                self._send_file_messages(alias, replies, now)
                return
        kind = msg.WhichOneof("content")
        if kind == "media" and msg.media.WhichOneof("content") == "audio":
            if not self.opts.mic:
                return  # --no-mic: a client's microphone is not played here
            self.audio.on_client_audio(alias, msg.media.audio.payload)  # the client's microphone
        elif kind == "control":
            ctl = msg.control
            which = ctl.WhichOneof("content")
            if which == "select_monitor" and self.streamer is not None:
                self.say(f"session {alias:08x} selects monitor {ctl.select_monitor.monitor_id}")
                self.streamer.select_monitor(ctl.select_monitor.monitor_id)
            elif which == "latency":
                self._latency.append(ctl.latency.total_us / 1000)
                now = self.server._clock()
                if now >= self._latency_log_at and self._latency:
                    self._latency_log_at = now + 10.0
                    lat = sorted(self._latency)
                    self._latency.clear()
                    self.say(
                        f"session {alias:08x} end-to-end latency p50 {lat[len(lat) // 2]:.1f} ms,"
                        f" max {lat[-1]:.1f} ms (client reports)"
                    )
            elif which == "clipboard" and self.clipboard is not None:
                text = text_from_message(msg, self._clipboard_budget(alias))
                if text is not None:
                    self.clipboard.set_remote_text(text)
        elif kind == "input":
            if msg.input.WhichOneof("event") == "gamepad":
                self._gamepad(msg.input.gamepad)
            elif self.injector is not None:
                self.injector.handle(msg.input)

    def _gamepad(self, pad: rift_pb2.GamepadMessage) -> None:
        if self.gamepads is None:
            if self._gamepad_note:
                return
            try:
                self.gamepads = VirtualGamepads()
                self.gamepads.handle(pad)
            except InjectionError as exc:
                self.gamepads = None
                self._gamepad_note = True
                self.say(f"  gamepad input ignored: {exc} ({gamepad_probe().remedy})")
            return
        try:
            self.gamepads.handle(pad)
        except InjectionError as exc:
            self.say(f"  gamepad input failed: {exc}")

    # ---- clipboard -----------------------------------------------------------------

    def _clipboard_budget(self, alias: int) -> int:
        s = self.endpoint.sessions.get(alias)
        return clipboard_text_budget(s.channel.max_plaintext) if s is not None else 0

    def _start_clipboard(self) -> None:
        if self.clipboard is not None or self.source is None or self.capture is None:
            return
        if self.source.name not in ("x11", "virtual", "wayland"):
            return
        wayland = None
        if self.source.name == "virtual":
            env = self.capture.env()  # type: ignore[attr-defined]
            display, auth = env["DISPLAY"], env.get("XAUTHORITY")
        elif self.source.name == "wayland":
            display, auth = None, None
            wayland = os.environ.get("WAYLAND_DISPLAY")
        else:
            display, auth = self.opts.display or os.environ.get("DISPLAY"), None
        loop = asyncio.get_running_loop()
        limit = self.opts.clipboard_max
        self.file_receiver.clipboard_max = limit

        def changed(text: str) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(self._send_clipboard, text)

        def too_large(size: int) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(
                self.say,
                f"clipboard: local copy of {size} bytes not synced: larger than the limit "
                f"of {limit} bytes (--clipboard-max)",
            )

        try:
            self.clipboard = open_clipboard(
                changed,
                display=display,
                auth=auth,
                wayland_display=wayland,
                max_bytes=limit,
                on_too_large=too_large,
            )
        except (ClipboardError, OSError) as exc:
            self.file_receiver.clipboard_max = 0
            self.say(f"  clipboard sync off: {exc}")
        else:
            where = display or wayland
            self.say(f"  clipboard sync on ({where}, {self.clipboard.mode})")

    def _send_clipboard(self, text: str) -> None:
        """A local copy: one ClipboardMessage when it fits a datagram (docs/spec/RIFT.md §1), else
        the
        file-transfer path under the reserved name (docs/protocol-notes.md)."""
        size = len(text.encode("utf-8"))
        now = self.server._clock()
        for alias in list(self.viewers):
            try:
                if size <= self._clipboard_budget(alias):
                    self.endpoint.send_message(alias, clipboard_message(text), now)
                    continue
                ft = self.files.get(alias)
                if ft is None:
                    continue
                _sender, out = ft.send_clipboard(text, now)
                self._send_file_messages(alias, out, now)
            except (KeyError, ValueError, TransferError):
                continue
        self.server.flush()

    def _clipboard_file_result(self, alias: int, ok: bool, text: str | None, why: str) -> None:
        """Large clipboard text that arrived over the file path (never written to disk)."""
        if not ok or text is None:
            self.say(f"session {alias:08x} clipboard from the client not applied: {why}")
            return
        if self.clipboard is not None:
            self.clipboard.set_remote_text(text)

    def _on_transport(self, event: ev.ClientTransportEvent) -> None:
        e, streamer = event.event, self.streamer
        if streamer is None:
            return
        if isinstance(e, KeyframeRequested):
            streamer.request_keyframe()
        elif isinstance(e, RateChanged):
            streamer.set_bitrate(e.target_bitrate_kbps)
        elif isinstance(e, SkipFramesRequested):
            streamer.skip_frames(e.count)

    def _on_event(self, event: ev.HostEvent) -> None:
        if isinstance(event, ev.ClientTransportEvent):
            self._on_transport(event)
        elif isinstance(event, ev.PairingCodeIssued):
            self.say(
                f"Pairing code: {_format_code(event.code)}  "
                "(valid 5 minutes, 5 attempts; enter it on the client)"
            )
        elif isinstance(event, ev.DevicePaired):
            self.trusted.add(event.client_id, event.name)
            self.say(f"paired and trusted: {event.name or '?'} ({event.client_id})")
        elif isinstance(event, ev.PairingAttemptFailed):
            self.say(f"wrong pairing code from {event.client_id} ({event.attempts_left} left)")
        elif isinstance(event, ev.ClientConnected):
            self.say(
                f"handshake from {event.name or '?'} ({event.client_id}) "
                f"at {format_hostport(str(event.addr[0]), int(event.addr[1]))}"
            )
        elif isinstance(event, ev.ClientAccepted):
            self.say(f"session {event.alias:08x} accepted for {event.client_id}")
            self._start_stream(event.alias, event.ack)
            self._start_files(event.alias)
        elif isinstance(event, ev.ClientRejected):
            reason = rift_pb2.RejectReason.Name(event.reason)  # type: ignore[arg-type]
            self.say(f"session {event.alias:08x} rejected: {reason}")
        elif isinstance(event, ev.ClientMigrated):
            self.say(f"session {event.alias:08x} moved to {event.new_addr[0]}:{event.new_addr[1]}")
        elif isinstance(event, ev.ClientStalled):
            self.say(f"session {event.alias:08x} stalled ({event.silence_s:.1f} s silent)")
        elif isinstance(event, ev.ClientGone):
            self.files.pop(event.alias, None)
            self.file_receiver.peer_gone(event.alias)
            self.say(
                f"session {event.alias:08x} ended: {event.reason.name.lower()} ({event.message})"
            )
            self.viewers.discard(event.alias)
            self.audio.client_gone(event.alias)
            if not self.viewers:
                self.audio.stop()
            # docs/spec/RIFT.md §4: nothing the client held stays pressed after its session ends
            if self.injector is not None:
                self.injector.release_all()
            if self.gamepads is not None:
                self.gamepads.release_all()
            self._stop_stream_if_idle()
        elif isinstance(event, ev.ClientMessage):
            self._on_client_message(event.alias, event.message)
            if self.on_message is not None:
                self.on_message(event.alias, event.message)

    async def close(self) -> None:
        if self._file_task is not None:
            self._file_task.cancel()
            self._file_task = None
        for task in list(self._offer_tasks):
            task.cancel()
        self.file_receiver.close()
        await self.server.close()
        if self.injector is not None:
            self.injector.close()
            self.injector = None
        if self.gamepads is not None:
            self.gamepads.close()
            self.gamepads = None
        if self.clipboard is not None:
            self.clipboard.close()
            self.clipboard = None
        self.viewers.clear()
        await asyncio.get_running_loop().run_in_executor(None, self.audio.close)
        if self._stopping is not None:
            await self._stopping
        if self.streamer is not None:
            streamer, self.streamer = self.streamer, None
            await asyncio.get_running_loop().run_in_executor(None, streamer.stop)
        self._close_recording()


async def serve(opts: HostOptions, stop: asyncio.Event | None = None) -> None:
    runtime = HostRuntime(opts)
    await runtime.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        runtime.say("shutting down")
        await runtime.close()
