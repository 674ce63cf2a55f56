"""The client runtime: one session, composed of features (docs/client.md).

:class:`ClientRuntime` owns the session (:func:`wavry.runtime.session.establish`) and the
socket, and hands what the session delivers to its features — video, audio, input, clipboard,
files, recording — through one typed router (:class:`wavry.runtime.features.Router`); back-ends
(decoder, window, audio, clipboard, recorder) are injected (:class:`Backends`).

It is a Python API first: the CLI (`wavry connect`), the desktop app and a web endpoint drive
the same object::

    rt = ClientRuntime(ConnectOptions(host, port), ClientCallbacks(say=print, on_stats=show))
    result = await rt.run()          # connects, streams until stop() / seconds / session end
    rt.stop()                        # from any thread

Callbacks: ``say`` (a line for the user), ``on_state`` (connecting, streaming, stalled,
reconnecting, closed), ``on_stats`` (:class:`wavry.client.live.LiveFigures` every second), and
``prompts`` for the pairing code and a changed host identity.

Threads: the event loop (socket, session, features), the decode thread
(:mod:`wavry.client.pipeline`) and the window's thread (:mod:`wavry.client.window_thread`:
SDL events and presentation). None of them waits on another: they hand values over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wavry.client.api import ClientCallbacks, ClientResult, Interrupted
from wavry.client.audio import AudioFeature
from wavry.client.backends import Backends
from wavry.client.clipboard import ClipboardFeature
from wavry.client.files import FilesFeature
from wavry.client.input import InputFeature
from wavry.client.live import LiveStatsFeature
from wavry.client.options import ConnectOptions, hello_config
from wavry.client.pipeline import DecodeJob, ReadyFrame
from wavry.client.recording import RecordingFeature
from wavry.client.screen import WindowFeature
from wavry.client.stats import ClientStats, sample_session, write_summary
from wavry.client.video import VideoFeature
from wavry.connectivity.pathstats import PathStats
from wavry.media.decode import DecodedFrame, snapshot
from wavry.media.encode import Codec
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.config import ClientConfig
from wavry.rift.transport import FrameReady, RateChanged
from wavry.runtime import messages
from wavry.runtime.features import PeerInfo, Router
from wavry.runtime.messages import AppEvent, MonitorSelected, MonitorsOffered
from wavry.runtime.session import Established, SessionFailed, establish

__all__ = ["Backends", "ClientCallbacks", "ClientResult", "ClientRuntime", "Interrupted"]

_log = logging.getLogger("wavry.client")
_CODEC = {rift_pb2.H264: Codec.H264, rift_pb2.HEVC: Codec.HEVC, rift_pb2.AV1: Codec.AV1}
TIMER_MAX_S = 0.05


class ClientRuntime:
    def __init__(
        self,
        opts: ConnectOptions,
        callbacks: ClientCallbacks | None = None,
        backends: Backends | None = None,
    ) -> None:
        self.opts = opts
        self.cb = callbacks or ClientCallbacks()
        self.backends = backends or Backends()
        self.stats = ClientStats()
        self.state = "idle"
        self.router = Router()
        self.est: Established | None = None
        self.window: Any = None
        self.screen: WindowFeature | None = None
        self.video: VideoFeature | None = None
        self.input: InputFeature | None = None
        self.files: FilesFeature | None = None
        self.audio: AudioFeature | None = None
        self.clipboard: ClipboardFeature | None = None
        self.recording: RecordingFeature | None = None
        self.live: LiveStatsFeature | None = None
        self.exit_message = ""
        self.interrupted = False
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream_fps = 0
        self.paths = PathStats(time.monotonic())
        self._attached = False

    # ---- the public surface -------------------------------------------------------------

    def stop(self, reason: str = "") -> None:
        """End the session (thread-safe). ``reason`` "interrupted": a Ctrl+C."""
        if reason == "interrupted":
            self.interrupted = True
        loop, event = self._loop, self._stop
        if loop is None or event is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        if self.cb.on_state is not None:
            self.cb.on_state(state, detail)

    async def run(self) -> ClientResult:
        """Connect, stream until stopped, the seconds are over or the session ends."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        opts = self.opts
        screen = (0, 0) if opts.headless else self.backends.screen()  # no display: fail now
        self.stats.connect_started = opts.started_at or time.monotonic()
        self.paths = PathStats(self.stats.connect_started)
        if opts.route is not None:  # the path manager reports every path change
            opts.route.on_path, opts.route.on_grant = self.paths.changed, self.paths.granted
        self._set_state("connecting", opts.label or f"{opts.host}:{opts.port}")
        est = await self._establish(screen)
        self.est = est
        if opts.route is None:
            self.paths.direct(time.monotonic(), est.address, est.handshake_ms)
        self.stats.handshake_ms = est.handshake_ms
        ack = est.ack
        self._stream_fps = ack.fps
        self.cb.say(
            f"connected to {est.host_name or '?'} ({est.host_id}): "
            f"{rift_pb2.Codec.Name(ack.selected_codec)} {ack.stream_resolution.width}x"
            f"{ack.stream_resolution.height}@{ack.fps}, handshake {est.handshake_ms:.1f} ms"
        )
        tasks: list[asyncio.Task[None]] = []
        ran = False
        try:
            self._build(est)
            self.router.accepted(self._peer(reconnected=False), time.monotonic())
            if opts.monitor is not None:
                self._send(MonitorSelected(opts.monitor))
            # frames are decoded from now on, also while the window opens: no backlog
            est.conn.set_batch_handler(self._on_batch)
            if not opts.headless:
                await self._open_window(est)
            self._set_state("streaming")
            tasks.append(asyncio.create_task(self._timers()))
            assert self.files is not None
            if opts.send_files:
                self.files.start_offers()
            stop = self._stop
            if opts.seconds is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), opts.seconds)
            else:
                await stop.wait()
            ran = True
        finally:
            self._stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._shutdown(est)
            if not ran:  # set-up failed or the task was cancelled: release what exists
                self.router.close()
                if self.screen is not None and self.screen not in self.router.features:
                    self.screen.close()
        if self.files is not None and self.files.failed and not self.exit_message:
            self.exit_message = f"{self.files.failed} file transfer(s) failed"
        self._set_state("closed", self.exit_message)
        return ClientResult(self._finish(), self.exit_message, self.interrupted)

    # ---- set-up -------------------------------------------------------------------------

    async def _establish(self, screen: tuple[int, int]) -> Established:
        """The session, or Interrupted when stop() comes first (Ctrl+C while connecting)."""
        opts = self.opts
        assert self._stop is not None
        connecting = asyncio.ensure_future(
            establish(
                opts.host,
                opts.port,
                self._config(screen),
                timeout=opts.timeout,
                pair_code=opts.pair_code,
                host_id=opts.host_id,
                config_dir=opts.config_dir,
                say=self.cb.say,
                prompts=self.cb.prompts,
                dial=opts.route.open if opts.route is not None else None,
                address=opts.label,
            )
        )
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({connecting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, SessionFailed):
                    await connecting
        if connecting.cancelled():
            self._set_state("closed", "stopped while connecting")
            raise Interrupted("stopped before the session was set up")
        return connecting.result()

    def _config(self, screen: tuple[int, int]) -> ClientConfig:
        return hello_config(self.opts, screen)

    def _peer(self, reconnected: bool) -> PeerInfo:
        est = self.est
        assert est is not None
        return PeerInfo(0, est.host_id, est.host_name, extra={"reconnected": reconnected})

    async def _open_window(self, est: Established) -> None:
        ack = est.ack
        width, height = ack.stream_resolution.width, ack.stream_resolution.height
        title = f"Wavry: {est.host_name or est.address}"
        opts = self.opts
        self.screen = WindowFeature(
            lambda: self.backends.window(title, width, height, opts),
            on_input=self._on_input,
            on_shown=self._on_window_shown,
            take=self._take_for_window,
            overlay_lines=self._overlay_lines,
        )
        self.window = await self.screen.open()
        self._attach_window()

    def _build(self, est: Established) -> None:
        opts, say = self.opts, self.cb.say
        ack = est.ack
        codec = _CODEC[ack.selected_codec]
        loop = asyncio.get_running_loop()
        if opts.record:
            self.recording = RecordingFeature(self.backends.recorder(opts, say), codec, say)
        self.audio = AudioFeature(
            self.backends.audio(say, opts.audio, opts.mic),
            self._send,
            lambda: est.session.clock_offset_s,
            self.recording.audio if self.recording is not None else None,
        )
        self.clipboard = ClipboardFeature(
            self._send, self._send_large_clipboard, self._max_plaintext, say, opts.clipboard_max
        )
        tr = est.session.transport
        self.files = FilesFeature(
            out_dir=opts.file_out_dir,
            max_size=opts.max_file_size,
            share=opts.file_share,
            spare=opts.file_spare,
            max_datagram=tr.config.max_datagram if tr is not None else 1400,
            send_message=self._send_message,
            send_bulk=self._send_bulk,
            flush=est.conn.flush,
            say=say,
            bitrate_kbps=lambda: self.stats.bitrate_target_kbps or ack.initial_bitrate_kbps,
            on_clipboard=self.clipboard.remote_text,
            send_files=opts.send_files,
        )
        self.video = VideoFeature(
            decoder=self.backends.decoder(codec, opts.hwdecode),
            stats=self.stats,
            send=self._send,
            call_soon=lambda fn: self._call_soon(fn),
            core_clock=est.conn._clock,
            clock_offset=lambda: est.session.clock_offset_s,
            stream_fps=ack.fps,
            max_bitrate_kbps=opts.bitrate_ceiling_kbps,
            on_shown=self._on_shown,
            on_decoded=self._on_decoded,
        )
        if not opts.headless:
            self.video.waiting_for_window()
        self.input = InputFeature(
            self._send, self._keepalive, lambda: self.screen is not None and self.screen.held
        )
        self.live = LiveStatsFeature(
            self.stats, self._sample_counters, lambda: self.state, ack.fps, self.cb.on_stats,
            say if opts.live_stats else None,
        )  # fmt: skip
        self.live.path = lambda: self.paths.line(time.monotonic())
        self.live.start(time.monotonic())
        for f in (self.video, self.input, self.audio, self.clipboard, self.files, self.live):
            self.router.add(f)
        if self.recording is not None:
            self.router.add(self.recording)
        self.audio.start(loop)

    def _take_for_window(self) -> ReadyFrame | None:
        """The window thread's frame (nothing until the window is attached)."""
        video = self.video
        return video.worker.take() if video is not None and self._attached else None

    def _attach_window(self) -> None:
        """The window is open: pictures go to it, its overlay and clipboard start."""
        screen, opts = self.screen, self.opts
        assert screen is not None and self.video is not None and self.files is not None
        self.router.add(screen)
        self._attached = True
        self.video.attach(screen.prepare, screen.wake)
        if self.clipboard is not None and (
            os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
        ):
            self.files.receiver.clipboard_max = opts.clipboard_max
            self.clipboard.start(asyncio.get_running_loop(), self.backends.clipboard)

    def _call_soon(self, fn: Callable[[], None]) -> None:
        """From the decode thread: run ``fn`` on the loop (nothing once the loop is gone)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

    # ---- sending ------------------------------------------------------------------------

    def _send(self, event: AppEvent) -> None:
        self._send_message(messages.encode(event))

    def _send_message(self, msg: rift_pb2.Message) -> None:
        assert self.est is not None
        with contextlib.suppress(RuntimeError, ValueError):  # re-establishing; too large
            self.est.conn.send(msg)

    def _send_bulk(self, msg: rift_pb2.Message) -> None:
        assert self.est is not None
        tr = self.est.session.transport
        if tr is None:
            raise RuntimeError("session is re-establishing")
        tr.send_bulk(msg, self.est.conn._clock())

    def _keepalive(self) -> None:
        assert self.est is not None
        self.est.conn.ping()

    def _max_plaintext(self) -> int:
        assert self.est is not None
        ch = self.est.session.channel
        return ch.max_plaintext if ch is not None else 0

    def _send_large_clipboard(self, text: str) -> None:
        if self.files is not None:
            self.files.send_clipboard(text)

    # ---- what the session delivers ------------------------------------------------------

    def _on_batch(self, batch: list[ev.ClientEvent]) -> None:
        """Everything one flush of the session produced, on the loop thread."""
        if self._stop is None or self._stop.is_set():
            return
        now = time.monotonic()
        video = self.video
        for event in batch:
            if isinstance(event, FrameReady):
                if video is not None:
                    video.on_frame(event.frame, now)
            elif isinstance(event, ev.MessageReceived):
                app = messages.decode(event.message)
                if app is not None and not self.router.dispatch(0, app, now):
                    self._unhandled(app)
            else:
                self._on_session_event(event, now)

    def _unhandled(self, app: AppEvent) -> None:
        if isinstance(app, MonitorsOffered):
            names = ", ".join(f"{m.id}:{m.name} {m.width}x{m.height}" for m in app.monitors)
            self.cb.say(f"host monitors: {names or 'none (no picture source on the host)'}")

    def _on_session_event(self, event: object, now: float) -> None:
        say = self.cb.say
        if isinstance(event, ev.PongReceived):
            rtt_ms = event.rtt_s * 1000
            self.stats.rtt(rtt_ms, now)
            if self.files is not None:
                self.files.signs.on_rtt(rtt_ms, now)
        elif isinstance(event, RateChanged):
            self.stats.congestion.on_target(event.target_bitrate_kbps, event.target_fps, now)
            if self.files is not None:
                self.files.signs.on_target(event.target_bitrate_kbps, now)
        elif isinstance(event, ev.LinkStalled):
            say(f"link stalled ({event.silence_s:.1f} s without packets)")
            self._set_state("stalled", f"{event.silence_s:.1f} s without packets")
        elif isinstance(event, ev.LinkResumed):
            say("link resumed")
            self._set_state("streaming")
        elif isinstance(event, ev.Reconnecting):
            say(f"reconnecting (attempt {event.attempt}): {event.reason}")
            if self.state != "reconnecting":
                self.router.gone(0, event.reason, now)
            self._set_state("reconnecting", event.reason)
        elif isinstance(event, ev.SessionAccepted) and event.reconnected:
            say("reconnected")
            self._set_state("streaming")
            self.router.accepted(self._peer(reconnected=True), now)
        elif isinstance(event, ev.SessionClosed):
            self.exit_message = event.message
            self.stop()

    def _on_decoded(self, job: DecodeJob, decoded: DecodedFrame) -> None:
        """Decode thread: every decoded unit (recording; the audio's A/V reference)."""
        self.paths.decoded(time.monotonic())
        if self.recording is not None:
            self.recording.video(job, decoded)
        if self.audio is not None:
            self.audio.video_timestamp(job.frame.timestamp_us)

    def _on_shown(self, ready: ReadyFrame, shown_wall: float) -> None:
        self.paths.shown(time.monotonic())
        if self.cb.on_frame_shown is not None:
            self.cb.on_frame_shown(ready, shown_wall)

    # ---- loops --------------------------------------------------------------------------

    async def _timers(self) -> None:
        """Feature timers on the monotonic clock."""
        assert self._stop is not None
        while not self._stop.is_set():
            due = self.router.next_timer()
            now = time.monotonic()
            delay = TIMER_MAX_S if due is None else min(TIMER_MAX_S, max(0.0, due - now))
            await asyncio.sleep(delay)
            self.router.timers(time.monotonic())
            self._check_done()

    def _check_done(self) -> None:
        """A headless `--send-file` run without --seconds ends when every file is done."""
        o, files = self.opts, self.files
        done = files is not None and not files.busy
        if o.headless and o.seconds is None and o.send_files and done:
            self.stop()

    def _on_input(self, batch: Any) -> None:
        """What the window thread saw (typed input, hotkey actions, dropped files)."""
        from wavry.client.window import WindowAction

        if self.input is None or self.files is None:
            return
        self.input.send(batch.events, time.monotonic())
        if WindowAction.QUIT in batch.actions:
            self.stop()
        if WindowAction.TOGGLE_FILE_PAUSE in batch.actions:
            self.files.toggle_pause()
        if WindowAction.CANCEL_FILES in batch.actions:
            self.files.cancel()
        for dropped in batch.dropped_files:
            self.files.send_dropped(Path(dropped))

    def _on_window_shown(self, ready: ReadyFrame, start: float, shown: float, wall: float) -> None:
        if self.video is not None and self._stop is not None and not self._stop.is_set():
            self.video.shown(ready, start, shown, wall)

    def _overlay_lines(self, now: float) -> list[str]:
        self._sample_counters(now)
        lines = [*self.stats.overlay_lines(now, self._stream_fps), self.paths.line(now)]
        if self.audio is not None:
            lines += self.audio.overlay_lines()
        if self.files is not None:
            lines += self.files.overlay_lines()
        if self.video is not None:
            lines.append(f"decode queue {self.video.worker.queue_depth}")
        return lines

    def _sample_counters(self, now: float) -> None:
        if self.est is not None:
            sample_session(self.stats, self.est.session, now)
        if self.video is not None:
            self.video.sync_counters()

    # ---- the end ------------------------------------------------------------------------

    async def _shutdown(self, est: Established) -> None:
        _log.debug("shutting down")
        if self.screen is not None and self.input is not None:
            self.input.send(self.screen.release_all(), time.monotonic())
        if self.video is not None:
            self.video.worker.close()
            self.video.sync_counters()
        self._sample_counters(time.monotonic())
        est.conn.set_batch_handler(None)
        await est.conn.close("client closed")
        _log.debug("session closed")

    def _finish(self) -> dict[str, Any]:
        summary = self.stats.summary() | self.paths.summary()
        last = self.video.worker.last_decoded if self.video is not None else None
        if self.video is not None:
            summary["decoder"] = self.video.worker.decoder.describe()
            summary["presenter"] = self.screen.presenter_name if self.screen else "headless"
        for f in reversed(self.router.features):
            if isinstance(f, AudioFeature):
                f.close()
                summary["audio"] = f.summary()
        self.router.close()
        if self.opts.stats_json is not None:
            write_summary(self.opts.stats_json, summary)
        if self.opts.snapshot is not None and last is not None:
            snapshot(last, self.opts.snapshot)
        self.window = None  # closed with the router (WindowFeature.close)
        _log.debug("finished")
        return summary
