"""`wavry connect`: receive, repair, decode and present the host's screen; send input back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.client.stats import ClientStats, frame_timing
from wavry.files.transfer import (
    CLIPBOARD_FILENAME,
    DEFAULT_CLIPBOARD_MAX,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_SHARE,
    FileReceiver,
    FileSender,
    FileTransfers,
    Outgoing,
    Role,
    SenderState,
    SpareCapacity,
    TransferError,
    default_download_dir,
    sha256_file,
)
from wavry.media.audio_session import ClientAudio
from wavry.media.decode import DecodedFrame, Decoder, DecoderError, snapshot
from wavry.media.encode import Codec
from wavry.media.record import Recorder, RecorderError, default_record_dir
from wavry.platform.clipboard import (
    ClipboardError,
    open_clipboard,
)
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.config import ClientConfig
from wavry.rift.transport import FrameReady, RateChanged
from wavry.runtime.clipboard_wire import clipboard_message, clipboard_text_budget, text_from_message
from wavry.runtime.session import Established, SessionFailed, establish
from wavry.settings import ConnectSettings

_CODEC = {rift_pb2.H264: Codec.H264, rift_pb2.HEVC: Codec.HEVC, rift_pb2.AV1: Codec.AV1}
INPUT_POLL_S = 0.004
LATENCY_REPORT_EVERY = 30  # frames between LatencyStats messages to the host


@dataclass(slots=True)
class ConnectOptions:
    host: str
    port: int
    headless: bool = False
    seconds: float | None = None
    stats_json: Path | None = None
    snapshot: Path | None = None
    fullscreen: bool = False
    vsync: bool = False
    pair_code: str | None = None
    host_id: str | None = None
    timeout: float = 10.0
    config_dir: Path | None = None
    live_stats: bool = False
    monitor: int | None = None
    send_files: list[Path] = field(default_factory=list)
    file_out_dir: Path | None = None  # None: default_download_dir()
    file_share: float = DEFAULT_SHARE
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    file_spare: bool = True  # files may use spare path capacity beyond file_share
    clipboard_max: int = DEFAULT_CLIPBOARD_MAX
    record: bool = False
    record_dir: Path | None = None  # None: default_record_dir()
    audio: bool = True  # play the host's audio (--no-audio: False)
    mic: bool = False  # --mic: send the default microphone to the host
    hwdecode: str | None = None  # --hwdecode auto|cuda|vaapi|qsv…: hardware decode, else software
    mic_source: str | None = None  # --mic source:NAME: that PipeWire/Pulse source, else default
    resolution: tuple[int, int] | None = None  # largest picture to ask the host for
    fps: int | None = None  # frame rate to ask the host for
    bitrate_kbps: int | None = None  # start bitrate to ask the host for
    max_bitrate_kbps: int | None = None  # bitrate ceiling to ask the host for


def options_from_settings(s: ConnectSettings, host: str, port: int) -> ConnectOptions:
    """The runtime's options from validated settings (docs/cli.md)."""
    return ConnectOptions(
        host=host,
        port=port,
        headless=s.headless,
        seconds=s.seconds,
        stats_json=Path(s.stats_json) if s.stats_json else None,
        snapshot=s.snapshot,
        fullscreen=s.fullscreen,
        vsync=s.vsync,
        pair_code=s.pair_code,
        host_id=s.host_id,
        timeout=s.timeout_seconds,
        live_stats=s.live_stats,
        monitor=s.monitor,
        send_files=list(s.send_file),
        file_out_dir=s.file_out_dir,
        file_share=s.file_share,
        max_file_size=s.max_file_size_bytes,
        file_spare=s.file_spare,
        clipboard_max=s.clipboard_max_bytes,
        record=s.record,
        record_dir=s.record_dir,
        audio=s.audio,
        mic=s.mic != "off",
        mic_source=s.mic.removeprefix("source:") if s.mic.startswith("source:") else None,
        hwdecode=s.hwdecode,
        resolution=s.resolution_pixels,
        fps=s.fps,
        bitrate_kbps=s.bitrate_kbps,
        max_bitrate_kbps=s.max_bitrate_kbps,
    )


FILE_TICK_S = 0.01
# the host cutting the video bitrate is a congestion sign for client → host files: on a shared
# CPU (loopback) or a shared link it is often the files' doing (docs/benchmarks.md shows video
# on-time falling from 0.99 to 0.81 when it is ignored)
FILE_BACKOFF_ON_BITRATE_CUT = True
FILE_RTT_BACKOFF_MS = 50.0  # Ping RTT this far above its minimum: a congestion sign for files


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class ClientRuntime:
    def __init__(self, opts: ConnectOptions, est: Established) -> None:
        self.opts = opts
        self.est = est
        self.conn = est.conn
        self.session = est.session
        self.stats = ClientStats()
        ack = est.ack
        self.decoder = Decoder(_CODEC[ack.selected_codec], hwaccel=opts.hwdecode)
        self.width, self.height = ack.stream_resolution.width, ack.stream_resolution.height
        self.window: Any = None
        self.last_frame: DecodedFrame | None = None
        self.stop = asyncio.Event()
        self.exit_message = ""
        self._since_report = 0
        self.clipboard: Any = None  # ClipboardSync | WlClipboardSync
        self._need_keyframe = False
        self._last_good_frame = 0
        self._rfi_at = 0.0
        receiver = FileReceiver(
            opts.file_out_dir or default_download_dir(), Role.CLIENT, max_size=opts.max_file_size
        )
        max_dgram = self.session.transport.config.max_datagram if self.session.transport else 1400
        self.files = FileTransfers(
            Role.CLIENT,
            receiver,
            share=opts.file_share,
            max_datagram_size=max_dgram,
            spare=SpareCapacity(enabled=opts.file_spare),
        )
        self._rate_drop_at = -1e9  # last congestion sign for file traffic (see file_loop)
        self._min_rtt_ms = float("inf")
        self._file_signs = {"bitrate cut": 0, "rtt": 0}  # congestion signs seen (progress lines)
        self._drop_tasks: set[asyncio.Task[None]] = set()
        self.files_failed = 0
        self._offering = bool(opts.send_files)
        self._files_reported: set[int] = set()
        self._progress_at = 0.0
        self.recorder: Recorder | None = None
        if opts.record:
            self.recorder = Recorder(
                opts.record_dir or default_record_dir(),
                on_file=lambda p: _say(f"recording saved: {p}"),
                audio=opts.audio,
            )
        self.audio = ClientAudio(_say, play=opts.audio, mic=opts.mic)

    def send_mic(self, timestamp_us: int, packet: bytes) -> None:
        """One Opus packet of our microphone to the host (priority lane)."""
        audio = rift_pb2.AudioPacket(timestamp_us=timestamp_us, payload=packet)
        with contextlib.suppress(RuntimeError):  # session re-establishing
            self.conn.send(rift_pb2.Message(media=rift_pb2.MediaMessage(audio=audio)))

    def _on_audio(self, packet: rift_pb2.AudioPacket) -> None:
        self.audio.on_packet(packet.timestamp_us, packet.payload, self.session.clock_offset_s)
        if self.recorder is not None:
            try:
                self.recorder.write_audio(packet.payload, timestamp_us=packet.timestamp_us)
            except RecorderError as exc:
                _say(f"recording stopped: {exc}")
                self.recorder = None

    def _record(self, f: Any, decoded: DecodedFrame) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.write(
                f.data,
                keyframe=f.keyframe,
                timestamp_us=f.timestamp_us,
                codec=self.decoder.codec,
                width=decoded.width,
                height=decoded.height,
            )
        except RecorderError as exc:
            _say(f"recording stopped: {exc}")
            self.recorder = None

    # ---- files ---------------------------------------------------------------------

    async def offer_files(self) -> None:
        """Offer every --send-file (hashed in a thread: the event loop keeps receiving video)."""
        try:
            for path in self.opts.send_files:
                await self._offer(path, f"cannot send {path}", "")
        finally:
            self._offering = False

    async def _offer(self, path: Path, failed: str, how: str) -> None:
        """Hash `path` in a thread, then offer it to the host (``failed``: the error's prefix,
        ``how``: appended to the offering line)."""
        loop = asyncio.get_running_loop()
        try:
            digest = await loop.run_in_executor(None, sha256_file, path)
            sender, out = self.files.send_file(path, self.conn._clock(), digest)
        except TransferError as exc:
            _say(f"{failed}: {exc}")
            self.files_failed += 1
            return
        _say(f"offering {sender.name} ({sender.size} bytes) to the host{how}")
        self._send_files_out(out, self.conn._clock())

    def _send_files_out(self, out: list[Outgoing], now: float) -> None:
        tr = self.session.transport
        with contextlib.suppress(RuntimeError):  # session re-establishing
            for o in out:
                if o.bulk:
                    if tr is not None:
                        tr.send_bulk(o.message, now)
                else:
                    self.session.send_message(o.message)
        self.conn.flush()

    def send_dropped(self, path: Path) -> None:
        """A file dropped on the window: offered to the host like a --send-file."""
        task = asyncio.get_running_loop().create_task(self._offer_dropped(path))
        self._drop_tasks.add(task)
        task.add_done_callback(self._drop_tasks.discard)

    async def _offer_dropped(self, path: Path) -> None:
        await self._offer(path, f"cannot send dropped file {path}", " (dropped on the window)")

    def toggle_file_pause(self) -> None:
        """Pause every outgoing transfer that is sending; if none is, resume the paused ones."""
        now = self.conn._clock()
        active = [s for s in self.files.senders.values() if s.state is SenderState.SENDING]
        out: list[Outgoing] = []
        if active:
            for s in active:
                out += s.pause()
            _say(f"paused {len(active)} file transfer(s) (Ctrl+Alt+Shift+P resumes)")
        else:
            paused = [s for s in self.files.senders.values() if s.state is SenderState.PAUSED]
            for s in paused:
                out += s.resume(now)
            if paused:
                _say(f"resumed {len(paused)} file transfer(s)")
        self._send_files_out(out, now)

    def cancel_files(self) -> None:
        """Cancel every outgoing transfer that has not finished (the host drops the .part)."""
        now = self.conn._clock()
        out: list[Outgoing] = []
        cancelled = [s for s in self.files.senders.values() if not s.done]
        for s in cancelled:
            out += s.cancel("cancelled by the user")
        if cancelled:
            _say(f"cancelled {len(cancelled)} file transfer(s)")
        self._send_files_out(out, now)

    def transfer_lines(self) -> list[str]:
        """Overlay lines for file transfers in progress."""
        return [
            f"sending {s.name}: {s.progress * 100:.0f} %"
            for s in self.files.senders.values()
            if not s.done and not s.is_clipboard
        ]

    def _report_sender(self, s: FileSender) -> None:
        if s.file_id in self._files_reported:
            return
        self._files_reported.add(s.file_id)
        if s.is_clipboard:
            if s.state is not SenderState.COMPLETE:
                _say(f"clipboard ({s.size} bytes) not synced: {s.message}")
            return
        if s.state is SenderState.COMPLETE:
            _say(f"sent {s.name}: 100 %, host {s.message}")
        else:
            self.files_failed += 1
            _say(f"sending {s.name} failed: {s.message}")

    async def file_loop(self) -> None:
        ack = self.est.ack
        while not self.stop.is_set():
            await asyncio.sleep(FILE_TICK_S)
            now = self.conn._clock()
            kbps = self.stats.bitrate_target_kbps or ack.initial_bitrate_kbps
            # the client has no congestion controller of its own for the uplink: the host
            # cutting the video bitrate or the Ping RTT growing (see _on_event), and chunk gaps
            # (FileTransfers.poll) are the congestion signs for file data (docs/files.md)
            clean = now - self._rate_drop_at >= 0.3
            out = self.files.poll(now, kbps, clean)
            if out:
                self._send_files_out(out, now)
            for s in self.files.senders.values():
                if s.done:
                    self._report_sender(s)
                elif s.is_clipboard:
                    continue
                elif s.state is SenderState.SENDING and now >= self._progress_at:
                    limit = (s.share * kbps + self.files.spare.kbps) / 8000  # MB/s
                    _say(
                        f"sending {s.name}: {s.progress * 100:.0f} % ({s.bytes_sent} bytes; "
                        f"limit {limit:.1f} MB/s; {self.files.spare.backoffs} back-offs; signs: "
                        f"{self._file_signs['bitrate cut']} bitrate cuts, "
                        f"{self._file_signs['rtt']} RTT, {s.rewinds} gaps)"
                    )
            if now >= self._progress_at:
                self._progress_at = now + 1.0
            assert self.files.receiver is not None
            for _peer, text in self.files.receiver.take_notices():
                _say(text)
            for r in self.files.receiver.take_results():
                if r.name == CLIPBOARD_FILENAME:
                    if r.ok and r.text is not None and self.clipboard is not None:
                        self.clipboard.set_remote_text(r.text)
                    elif not r.ok:
                        _say(f"clipboard from the host not applied: {r.message}")
                elif r.ok:
                    _say(f"received {r.name} -> {r.path}")
                else:
                    _say(f"file {r.name or '?'} from the host not saved: {r.message}")
            if (
                self.opts.headless
                and self.opts.seconds is None
                and self.opts.send_files
                and not self._offering
                and not self.files.sending
            ):
                self.stop.set()  # headless --send-file: done when every file is

    def _on_file_message(self, msg: rift_pb2.Message) -> bool:
        now = self.conn._clock()
        replies = self.files.handle(msg, now)
        if replies is None:
            return False
        if replies:
            self._send_files_out(replies, now)
        return True

    def _clipboard_budget(self) -> int:
        ch = self.session.channel
        return clipboard_text_budget(ch.max_plaintext) if ch is not None else 0

    def start_clipboard(self) -> None:
        """Sync the clipboard with the host when the client runs with a window on a desktop:
        wl-clipboard on Wayland (WAYLAND_DISPLAY), X11 selections otherwise."""
        if self.window is None:
            return
        if not (os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")):
            return
        loop = asyncio.get_running_loop()
        limit = self.opts.clipboard_max

        def changed(text: str) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(self._send_clipboard, text)

        def too_large(size: int) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(
                _say,
                f"clipboard: local copy of {size} bytes not synced: larger than the limit "
                f"of {limit} bytes (--clipboard-max)",
            )

        try:
            self.clipboard = open_clipboard(changed, max_bytes=limit, on_too_large=too_large)
        except (ClipboardError, OSError) as exc:
            _say(f"clipboard sync off: {exc}")
        else:
            assert self.files.receiver is not None
            self.files.receiver.clipboard_max = limit
            _say(f"clipboard sync on ({self.clipboard.mode})")

    def _send_clipboard(self, text: str) -> None:
        """One ClipboardMessage when the text fits a datagram (docs/spec/RIFT.md §1), else the file
        path
        under the reserved name (docs/protocol-notes.md)."""
        with contextlib.suppress(RuntimeError, ValueError, TransferError):
            if len(text.encode("utf-8")) <= self._clipboard_budget():
                self.conn.send(clipboard_message(text))
                return
            now = self.conn._clock()
            _sender, out = self.files.send_clipboard(text, now)
            self._send_files_out(out, now)

    def open_window(self) -> None:
        if self.opts.headless:
            return
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SessionFailed("no display to open a window on: use --headless (or set DISPLAY)")
        from wavry.client.window import VideoWindow, WindowError

        title = f"Wavry: {self.est.host_name or self.est.address}"
        try:
            self.window = VideoWindow(
                title,
                self.width,
                self.height,
                fullscreen=self.opts.fullscreen,
                vsync=self.opts.vsync,
            )
        except WindowError as exc:
            raise SessionFailed(f"{exc}; use --headless to run without a window") from exc

    # ---- frames --------------------------------------------------------------------

    def on_frame(self, ready: FrameReady, present: bool = True) -> None:
        """Decode every frame (later ones reference it); present it only when no newer frame
        is already waiting (`present`), so nothing is ever shown behind a newer picture."""
        f = ready.frame
        if self._need_keyframe and not f.keyframe:
            self.stats.dropped += 1  # undecodable until the keyframe we asked for
            self._ask_keyframe()
            return
        t0 = time.time()
        try:
            decoded = self.decoder.decode(f.data)
        except DecoderError:
            decoded = None
        t1 = time.time()
        if decoded is None:
            self.stats.dropped += 1
            self._need_keyframe = True
            self._ask_keyframe()
            return
        self._need_keyframe = False
        self._last_good_frame = f.frame_id
        self.last_frame = decoded
        self.audio.video_ts_us = f.timestamp_us  # for the A/V offset of the next audio packets
        self._record(f, decoded)
        if not present:
            self.stats.dropped += 1  # superseded by a newer frame in the same burst
            return
        if self.window is not None:
            planes = decoded.planes()
            if decoded.format == "yuv420p" and len(planes) == 3:
                self.window.present_i420(
                    decoded.width,
                    decoded.height,
                    (planes[0][0], planes[1][0], planes[2][0]),
                    (planes[0][1], planes[1][1], planes[2][1]),
                )
        t2 = time.time()
        offset = self.session.clock_offset_s or 0.0
        timing = frame_timing(
            frame_id=f.frame_id,
            timestamp_us=f.timestamp_us,
            capture_us=f.capture_us,
            encode_us=f.encode_us,
            last_chunk_at=self.conn.wall_time(f.last_chunk_at),  # core clock → wall clock
            decode_start=t0,
            decode_end=t1,
            presented_at=t2,
            clock_offset_s=offset,
            size_bytes=len(f.data),
        )
        self.stats.record(timing)
        self._since_report += 1
        if self._since_report >= LATENCY_REPORT_EVERY:
            self._since_report = 0
            msg = rift_pb2.Message(control=rift_pb2.ControlMessage(latency=timing.to_message()))
            with contextlib.suppress(RuntimeError):
                self.conn.send(msg)

    def _ask_keyframe(self) -> None:
        """ReferenceInvalidation to the host, at most every 250 ms while waiting."""
        now = time.monotonic()
        if now < self._rfi_at:
            return
        self._rfi_at = now + 0.25
        rfi = rift_pb2.ReferenceInvalidation(last_valid_frame_id=self._last_good_frame)
        with contextlib.suppress(RuntimeError):
            self.conn.send(rift_pb2.Message(control=rift_pb2.ControlMessage(rfi=rfi)))

    def _refresh_counters(self) -> None:
        tr = self.session.transport
        ch = self.session.channel
        if tr is None or ch is None:
            return
        highest = tr.nack.highest_packet_id
        if highest:
            received = ch.counters.received
            self.stats.loss_pct = max(0.0, (highest - received) / highest * 100)
        self.stats.fec_recovered = tr.stats.fec_recovered

    # ---- loops ---------------------------------------------------------------------

    async def events(self) -> None:
        """Handle the session's events until `stop`: synchronously, as each batch of datagrams
        completes them (a frame is decoded in the same loop iteration its last chunk arrived)."""
        self.conn.set_batch_handler(self._on_batch)
        try:
            await self.stop.wait()
        finally:
            self.conn.set_batch_handler(None)

    def _on_batch(self, batch: list[ev.ClientEvent]) -> None:
        """Everything one flush produced: decode every frame, present only the newest."""
        if self.stop.is_set():
            return
        newest = next((e for e in reversed(batch) if isinstance(e, FrameReady)), None)
        for event in batch:
            if isinstance(event, FrameReady):
                self.on_frame(event, present=event is newest)
            else:
                self._on_event(event)

    def _on_event(self, event: object) -> None:
        if isinstance(event, ev.PongReceived):
            self.stats.rtt_ms = event.rtt_s * 1000
            self._min_rtt_ms = min(self._min_rtt_ms, self.stats.rtt_ms)
            if self.stats.rtt_ms > self._min_rtt_ms + FILE_RTT_BACKOFF_MS:
                self._rate_drop_at = self.conn._clock()  # a queue (or a busy host): files yield
                self._file_signs["rtt"] += 1
        elif isinstance(event, RateChanged):
            old = self.stats.bitrate_target_kbps
            if old is not None and event.target_bitrate_kbps < 0.9 * old:
                if FILE_BACKOFF_ON_BITRATE_CUT:
                    self._rate_drop_at = self.conn._clock()
                self._file_signs["bitrate cut"] += 1
            self.stats.bitrate_target_kbps = event.target_bitrate_kbps
        elif isinstance(event, ev.MessageReceived):
            if self._on_file_message(event.message):
                return
            media = event.message.media
            if event.message.HasField("media") and media.HasField("audio"):
                self._on_audio(media.audio)
                return
            ctl = event.message.control
            if event.message.HasField("control") and ctl.HasField("clipboard"):
                if self.clipboard is not None:
                    text = text_from_message(event.message, self._clipboard_budget())
                    if text is not None:
                        self.clipboard.set_remote_text(text)
            elif event.message.HasField("control") and ctl.HasField("monitor_list"):
                mons = ctl.monitor_list.monitors
                names = ", ".join(f"{m.id}:{m.name} {m.width}x{m.height}" for m in mons)
                _say(f"host monitors: {names or 'none (no picture source on the host)'}")
        elif isinstance(event, ev.LinkStalled):
            _say(f"link stalled ({event.silence_s:.1f} s without packets)")
        elif isinstance(event, ev.LinkResumed):
            _say("link resumed")
        elif isinstance(event, ev.Reconnecting):
            _say(f"reconnecting (attempt {event.attempt}): {event.reason}")
        elif isinstance(event, ev.SessionAccepted) and event.reconnected:
            _say("reconnected")
            self._need_keyframe = True  # a new session: the decoder needs a fresh keyframe
            now = self.conn._clock()
            assert self.files.receiver is not None
            self.files.receiver.peer_gone(0)  # the host's offers continue as new transfers
            for s in self.files.senders.values():  # resume: the host keeps our partial files
                self._send_files_out(s.reoffer(now), now)
        elif isinstance(event, ev.SessionClosed):
            self.exit_message = event.message
            self.stop.set()

    async def input_loop(self) -> None:
        from wavry.client.window import WindowAction

        overlay_at = 0.0
        while not self.stop.is_set() and self.window is not None:
            batch = self.window.poll()
            for e in batch.events:
                with contextlib.suppress(RuntimeError):  # session re-establishing
                    self.conn.send(rift_pb2.Message(input=e))
            if WindowAction.QUIT in batch.actions:
                self.stop.set()
            if WindowAction.TOGGLE_FILE_PAUSE in batch.actions:
                self.toggle_file_pause()
            if WindowAction.CANCEL_FILES in batch.actions:
                self.cancel_files()
            for dropped in batch.dropped_files:
                self.send_dropped(Path(dropped))
            now = time.time()
            if self.window.overlay_visible and now >= overlay_at:
                overlay_at = now + 0.25
                self._refresh_counters()
                self.stats.congestion_state = self._congestion_state()
                lines = self.stats.overlay_lines(now) + self.audio.overlay_lines()
                self.window.set_overlay(lines + self.transfer_lines())
            await asyncio.sleep(INPUT_POLL_S)

    def _congestion_state(self) -> str:
        return "-" if self.stats.bitrate_target_kbps is None else "adapting"

    async def live(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(1.0)
            self._refresh_counters()
            s = self.stats.summary()
            lat = s["e2e_latency_ms"]
            _say(
                f"{self.stats.fps(time.time()):4.0f} fps  e2e p50 {lat['p50'] or 0:6.2f} ms "
                f"p95 {lat['p95'] or 0:6.2f} ms  {self.stats.bitrate_kbps(time.time()):7.0f} kbit/s"
                f"  loss {self.stats.loss_pct:4.2f} %  rtt {self.stats.rtt_ms or 0:5.2f} ms"
            )

    def finish(self) -> dict[str, Any]:
        self._refresh_counters()
        if self.recorder is not None:
            try:
                self.recorder.close()
            except RecorderError as exc:
                _say(f"recording not finished: {exc}")
            self.recorder = None
        summary = self.stats.summary()
        self.audio.close()
        summary["audio"] = self.audio.summary()
        summary["decoder"] = self.decoder.describe()
        if self.opts.stats_json is not None:
            text = json.dumps(summary, indent=2) + "\n"
            if str(self.opts.stats_json) == "-":
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                self.opts.stats_json.parent.mkdir(parents=True, exist_ok=True)
                self.opts.stats_json.write_text(text)
        if self.opts.snapshot is not None and self.last_frame is not None:
            snapshot(self.last_frame, self.opts.snapshot)
        if self.clipboard is not None:
            self.clipboard.close()
            self.clipboard = None
        if self.window is not None:
            self.window.close()
            self.window = None
        return summary


async def run_connect(opts: ConnectOptions) -> tuple[dict[str, Any], str]:
    config = ClientConfig(
        name=socket.gethostname(),
        supported_codecs=[rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1],
    )
    est = await establish(
        opts.host,
        opts.port,
        config,
        timeout=opts.timeout,
        pair_code=opts.pair_code,
        host_id=opts.host_id,
        config_dir=opts.config_dir,
        say=_say,
    )
    ack = est.ack
    _say(
        f"connected to {est.host_name or '?'} ({est.host_id}): "
        f"{rift_pb2.Codec.Name(ack.selected_codec)} {ack.stream_resolution.width}x"
        f"{ack.stream_resolution.height}@{ack.fps}, handshake {est.handshake_ms:.1f} ms"
    )
    rt = ClientRuntime(opts, est)
    rt.audio.start(asyncio.get_running_loop(), rt.send_mic)
    if opts.monitor is not None:
        select = rift_pb2.SelectMonitor(monitor_id=opts.monitor)
        est.conn.send(rift_pb2.Message(control=rift_pb2.ControlMessage(select_monitor=select)))
    try:
        rt.open_window()
        rt.start_clipboard()
        tasks = [
            asyncio.create_task(rt.events()),
            asyncio.create_task(rt.file_loop()),
            asyncio.create_task(rt.offer_files()),
        ]
        if rt.window is not None:
            tasks.append(asyncio.create_task(rt.input_loop()))
        if opts.live_stats:
            tasks.append(asyncio.create_task(rt.live()))
        if opts.seconds is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.stop.wait(), opts.seconds)
        else:
            await rt.stop.wait()
        rt.stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if rt.window is not None:
            for e in rt.window.release_all():
                with contextlib.suppress(RuntimeError):
                    rt.conn.send(rift_pb2.Message(input=e))
        if rt.files.receiver is not None:
            rt.files.receiver.close()
        rt.audio.close()
        await est.conn.close("client closed")
    if rt.files_failed and not rt.exit_message:
        rt.exit_message = f"{rt.files_failed} file transfer(s) failed"
    return rt.finish(), rt.exit_message
