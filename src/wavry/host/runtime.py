"""`HostRuntime`: share this machine — a thin composer of features around one session endpoint.

It owns the sans-I/O ``HostEndpoint`` (sessions, handshakes, pairing) on its asyncio
``HostServer`` (the socket), turns what the core reports into the features' lifecycle (session
accepted, typed event, timer, session gone) through one :class:`~wavry.host.routing.HostRouter`,
and reports to one observer (:mod:`wavry.host.notices`). The features — video, input, audio,
clipboard, files, stats, recording — get their back-ends handed in (:class:`HostBackends`).

Python API (the CLI and the desktop app use the same one)::

    rt = HostRuntime(options, observer=on_notice)
    await rt.start()            # HostError: cannot listen, no such display, …
    rt.clients()                # connected clients with live figures
    rt.disconnect(peer)         # end one session
    rt.show_pairing_code()      # like `wavry host --pair`
    rt.refuse_pairing(peer)     # answer a PairingRequested notice
    rt.trusted_devices(); rt.forget_device(wavry_id)
    await rt.stopped()          # returns when a fatal error (the display went away) stops it
    await rt.close()
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from wavry.connectivity.services import host_services
from wavry.files.transfer import FileReceiver, Role, default_download_dir
from wavry.host.addresses import connect_addresses
from wavry.host.audio import AudioFeature
from wavry.host.clipboard import ClipboardFeature
from wavry.host.console import ConsolePrinter
from wavry.host.files import FilesFeature
from wavry.host.input import Gamepads, InputFeature
from wavry.host.link import SessionLink
from wavry.host.notices import (
    ClientConnecting,
    ClientJoined,
    ClientLeft,
    ClientMoved,
    ClientRefused,
    ClientStalled,
    ClientStats,
    HostStarted,
    HostStopped,
    Notice,
    Observer,
)
from wavry.host.options import HostOptions
from wavry.host.recording import RecordingFeature
from wavry.host.routing import (
    FramesToSkip,
    HostRouter,
    PeerInfo,
    RateTarget,
    SessionStalled,
    StreamParams,
)
from wavry.host.setup import HostError, PictureSource, host_config, open_picture
from wavry.host.stats import StatsFeature
from wavry.host.trust import Trust
from wavry.host.video import VideoFeature
from wavry.media.audio_session import HostAudio, default_audio_spec
from wavry.media.types import Capture, CaptureError
from wavry.net.addr import format_hostport
from wavry.net.host import HostServer
from wavry.net.udp import Timer
from wavry.platform.audio import AudioSpec
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.host import HostEndpoint
from wavry.rift.transport import KeyframeRequested, RateChanged, SkipFramesRequested
from wavry.runtime.injection import InjectorSink
from wavry.runtime.messages import KeyframeNeeded, decode
from wavry.runtime.streamer import CODEC_FROM_RIFT
from wavry.store import TrustedDevice, TrustedDevices, load_or_create_identity

__all__ = ["ClientInfo", "HostBackends", "HostError", "HostRuntime", "HostService"]


class HostService(Protocol):
    """Something started and stopped with the host (e.g. the browser endpoint of --web)."""

    async def start(self, runtime: HostRuntime) -> None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class HostBackends:
    """Back-ends to use instead of the ones the options select (tests, the desktop app)."""

    capture: Capture | None = None
    open_injector: Callable[[Capture], InjectorSink | None] | None = None
    open_gamepads: Callable[[], Gamepads] | None = None
    open_clipboard: Any = None  # a ClipboardOpener
    audio: HostAudio | None = None


@dataclass(slots=True)
class ClientInfo:
    peer: int
    wavry_id: str
    name: str
    address: str
    since: float  # time.time() when the session was accepted
    width: int
    height: int
    fps: int
    stats: ClientStats = field(default_factory=ClientStats)


def _listen_reason(exc: OSError) -> str:
    """The reason in an OSError from binding (uvloop keeps it in the cause)."""
    for e in (exc, exc.__cause__, exc.__context__):
        if isinstance(e, socket.gaierror) or (isinstance(e, OSError) and (e.errno or 0) < 0):
            # a resolver error (EAI_*, negative in uvloop): not an errno for os.strerror
            return "not an address of this machine (it does not resolve)"
        if isinstance(e, OSError) and e.errno:
            return os.strerror(e.errno).lower()
    return str(exc)


class HostRuntime:
    def __init__(
        self,
        opts: HostOptions,
        observer: Observer | None = None,
        *,
        out: TextIO | None = None,
        backends: HostBackends | None = None,
    ) -> None:
        self.opts = opts
        self.notify: Observer = observer or ConsolePrinter(out)
        backends = backends or HostBackends()
        self.identity = load_or_create_identity(opts.config_dir)
        self.trusted_store = TrustedDevices(opts.config_dir)
        self.picture: PictureSource = open_picture(opts, backends.capture)
        config = host_config(opts, opts.name or socket.gethostname(), self.picture)
        self.endpoint = HostEndpoint(self.identity, config, trusted=self.trusted_store.ids())
        self.endpoint.monitors = self.picture.monitors()
        self.server = HostServer(self.endpoint, on_event=self._on_core_event)
        self.link = SessionLink(self.endpoint, self.server)
        self.trust = Trust(self.trusted_store, self.endpoint, self.notify)
        self._backends = backends
        self._timer = Timer(self._on_timer)
        self._peers: dict[int, PeerInfo] = {}
        self._joined: dict[int, float] = {}
        self._connecting: dict[int, ev.ClientConnected] = {}
        self._stopped = asyncio.Event()
        self.failure = ""
        self.bound: tuple[str, int] | None = None
        self.services: list[HostService] = []
        if opts.web is not None:  # browser clients (docs/browser.md)
            from wavry.web.endpoint import WebService

            self.services.append(WebService(opts.web))
        # after the web endpoint: the presence answers browsers with its addresses
        self.services.extend(host_services(opts.connectivity))
        self._input_note = False
        self.router = HostRouter(self._features())

    # ---- composition --------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.notify(Notice(text))

    def _features(self) -> list[Any]:
        opts, b = self.opts, self._backends
        self.video = VideoFeature(
            self.picture.capture,
            self.link,
            self.say,
            on_source_lost=self._source_lost,
            on_capture_ready=self._capture_ready,
            follow_client_size=opts.follows_client_size,
        )
        gamepads = b.open_gamepads or _uinput_gamepads
        self.input = InputFeature(
            self.link, self.notify, self.say, open_gamepads=gamepads, gamepad_remedy=_pad_remedy
        )
        self.audio_note = ""
        if b.audio is not None:
            host_audio = b.audio
        else:
            if opts.audio is None:
                spec, self.audio_note = default_audio_spec()
            else:
                spec = AudioSpec.parse(opts.audio)
            host_audio = HostAudio(spec, self.say, frame_ms=opts.audio_frame_ms)
        self.audio = AudioFeature(host_audio, self.link, mic=opts.mic)
        receiver = FileReceiver(
            opts.file_out_dir or default_download_dir(), Role.HOST, max_size=opts.max_file_size
        )
        self.clipboard = ClipboardFeature(
            self.link,
            self.say,
            max_bytes=opts.clipboard_max,
            send_as_file=lambda peer, text: self.files.send_clipboard(peer, text),
            on_state=lambda on: self._clipboard_files(receiver, on),
        )
        self.files = FilesFeature(
            self.link,
            self.say,
            receiver,
            send_files=opts.send_files,
            share=opts.file_share,
            spare=opts.file_spare,
            on_clipboard=self.clipboard.from_file,
        )
        self.stats = StatsFeature(self.notify)
        features: list[Any] = [
            self.video,
            self.input,
            self.audio,
            self.clipboard,
            self.files,
            self.stats,
        ]
        self.recording: RecordingFeature | None = None
        if opts.record:
            self.recording = RecordingFeature(
                self.say, opts.record_dir, audio=host_audio.spec.kind != "off"
            )
            self.video.taps.append(self.recording.on_video)
            self.video.on_idle.append(self.recording.finish_file)
            self.audio.taps.append(self.recording.on_audio)
            features.append(self.recording)
        self.link.after_flush = self._reschedule
        return features

    def _clipboard_files(self, receiver: FileReceiver, synced: bool) -> None:
        """Clipboard text too large for a datagram arrives as a file: accepted while synced."""
        receiver.clipboard_max = self.opts.clipboard_max if synced else 0

    def _capture_ready(self, capture: Capture) -> None:
        """A stream started its capture: point input and the clipboard at its display (a
        virtual display may be a new one: it starts again at another client's size)."""
        fresh = self.picture.name == "virtual"
        if self.input.injector is None or fresh:
            self.input.attach(self._open_injector(capture))
        if self.clipboard.backend is None or fresh:
            opener = self._backends.open_clipboard
            where = ""
            if opener is None:
                opener, where = self.picture.clipboard_opener(capture)
            self.clipboard.attach(opener, where, reopen=fresh)

    def _open_injector(self, capture: Capture) -> InjectorSink | None:
        opener = self._backends.open_injector
        if opener is not None:
            return opener(capture)
        injector, problem = self.picture.open_injector(capture)
        if problem and not self._input_note:
            self._input_note = True
            self.say(f"  {problem}")
        return injector

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        host, port = self.opts.listen
        try:
            self.bound = await self.server.start(host, port)
        except OSError as exc:
            raise HostError(
                f"cannot listen on {format_hostport(host, port)}: {_listen_reason(exc)}"
            ) from exc
        # a virtual display of a fixed size is the host's desktop session: it starts now, its
        # application with it (a client's size is only known when one comes)
        open_display = getattr(self.picture.capture, "open", None)
        if self.picture.name == "virtual" and not self.picture.follow_client and open_display:
            try:
                await asyncio.to_thread(open_display)
            except CaptureError as exc:  # serve() closes the runtime
                raise HostError(str(exc)) from exc
        bound_host, bound_port = self.bound
        audio = self.audio.audio.spec
        self.notify(
            HostStarted(
                name=self.endpoint.config.name,
                wavry_id=self.identity.wavry_id,
                listen=format_hostport(bound_host, bound_port),
                connect_addresses=tuple(connect_addresses(bound_host, bound_port)),
                trust_any=self.opts.trust_any,
                trusted_devices=len(self.endpoint.trusted),
                picture=self.picture.describe(self.opts.fps),
                picture_problem=self.picture.problem,
                audio=(
                    f"off{f' ({self.audio_note})' if self.audio_note else ''}"
                    if audio.kind == "off"
                    else f"{audio} (captured while a client is connected)"
                ),
            )
        )
        for service in self.services:
            await service.start(self)
        if self.opts.pair:
            self.show_pairing_code()
        return self.bound

    async def stopped(self) -> str:
        """Wait until the host stops by itself (a fatal error); returns the error."""
        await self._stopped.wait()
        return self.failure

    def _source_lost(self, why: str) -> None:
        self.failure = f"{why}: nothing left to share"
        self._stopped.set()

    async def close(self) -> None:
        for service in reversed(self.services):
            await service.close()
        await self.server.close()  # every session ends: the features release what it held
        self._timer.cancel()
        await self.video.stop()
        await self.audio.stop()
        self.router.close()
        self.picture.close()
        self.notify(HostStopped(self.failure))

    # ---- the owner's controls -----------------------------------------------------------

    def clients(self) -> list[ClientInfo]:
        out = []
        for peer, info in self._peers.items():
            stream = info.extra.get("stream")
            w = h = fps = 0
            if isinstance(stream, StreamParams):
                w, h, fps = stream.width, stream.height, stream.fps
            window = self.stats.last_window(peer)
            stats = ClientStats(
                frames_sent=self.video.frames_to.get(peer, 0),
                bitrate_target_kbps=self.link.target_bitrate_kbps(peer),
                rtt_ms=self.link.rtt_ms(peer),
                latency_p50_ms=window.p50_ms if window else None,
                latency_max_ms=window.max_ms if window else None,
            )
            address = "" if info.address is None else format_hostport(*info.address)
            out.append(
                ClientInfo(
                    peer, info.wavry_id, info.name, address, self._joined[peer], w, h, fps, stats
                )
            )
        return out

    def disconnect(self, peer: int, message: str = "disconnected by the host's owner") -> None:
        self.link.close_session(peer, message)

    def show_pairing_code(self) -> str | None:
        with self.server.lock:  # every call into the core holds it (the encoder sends too)
            code = self.trust.show_code(self.link.now())
            self.server.flush()
        return code

    def refuse_pairing(self, peer: int) -> None:
        with self.server.lock:
            self.trust.refuse(peer)
            self.server.flush()

    def trusted_devices(self) -> list[TrustedDevice]:
        return self.trust.devices()

    def forget_device(self, wavry_id: str) -> bool:
        with self.server.lock:
            found = self.trust.forget(wavry_id)
            self.server.flush()
        return found

    # ---- the core's events --------------------------------------------------------------

    def _on_core_event(self, event: ev.HostEvent) -> None:
        now = self.link.now()
        if isinstance(event, ev.ClientMessage):
            app = decode(event.message)
            if app is not None:
                self.router.dispatch(event.alias, app, now)
        elif isinstance(event, ev.ClientTransportEvent):
            e = event.event
            if isinstance(e, KeyframeRequested):
                self.router.dispatch(event.alias, KeyframeNeeded(e.last_valid_frame_id), now)
            elif isinstance(e, RateChanged):
                self.router.dispatch(
                    event.alias, RateTarget(e.target_bitrate_kbps, e.target_fps), now
                )
            elif isinstance(e, SkipFramesRequested):
                self.router.dispatch(event.alias, FramesToSkip(e.count), now)
        elif isinstance(event, ev.ClientConnected):
            self._connecting[event.alias] = event
            self.notify(
                ClientConnecting(event.alias, event.client_id, event.name, _addr(event.addr))
            )
        elif isinstance(event, ev.ClientAccepted):
            self._accepted(event, now)
        elif isinstance(event, ev.ClientRejected):
            self._rejected(event, now)
        elif isinstance(event, ev.ClientMigrated):
            info = self._peers.get(event.alias)
            if info is not None:
                self._peers[event.alias] = PeerInfo(
                    info.peer, info.wavry_id, info.name, _pair(event.new_addr), info.extra
                )
            self.notify(ClientMoved(event.alias, _addr(event.new_addr)))
        elif isinstance(event, ev.ClientStalled):
            self.notify(ClientStalled(event.alias, event.silence_s))
            self.router.dispatch(event.alias, SessionStalled(event.silence_s), now)
        elif isinstance(event, ev.ClientGone):
            self._connecting.pop(event.alias, None)
            self._peers.pop(event.alias, None)
            self._joined.pop(event.alias, None)
            reason = event.reason.name.lower()
            self.notify(ClientLeft(event.alias, event.client_id, reason, event.message))
            self.router.gone(event.alias, reason, now)
        elif isinstance(event, ev.PairingCodeIssued):
            self.trust.on_code(event, now)
        elif isinstance(event, ev.DevicePaired):
            self.trust.on_paired(event)
        elif isinstance(event, ev.PairingAttemptFailed):
            self.trust.on_failed(event)
        self._reschedule()

    def _accepted(self, event: ev.ClientAccepted, now: float) -> None:
        ack = event.ack
        res = ack.stream_resolution
        codec = CODEC_FROM_RIFT[ack.selected_codec]
        stream = StreamParams(codec, res.width, res.height, ack.fps, ack.initial_bitrate_kbps)
        hello = self._connecting.pop(event.alias, None)
        name = hello.name if hello is not None else event.hello.client_name
        addr = _pair(hello.addr) if hello is not None else None
        s = self.endpoint.sessions.get(event.alias)
        if s is not None:
            addr = _pair(s.addr)
        info = PeerInfo(event.alias, event.client_id, name, addr, {"stream": stream})
        self._peers[event.alias] = info
        self._joined[event.alias] = time.time()
        self.notify(
            ClientJoined(
                event.alias,
                event.client_id,
                name,
                "" if addr is None else format_hostport(*addr),
                res.width,
                res.height,
                ack.fps,
            )
        )
        self.router.accepted(info, now)

    def _rejected(self, event: ev.ClientRejected, now: float) -> None:
        reason = rift_pb2.RejectReason.Name(event.reason)  # type: ignore[arg-type]
        self.notify(ClientRefused(event.alias, event.client_id, reason, event.message))
        if event.reason == rift_pb2.PAIRING_REQUIRED:
            s = self.endpoint.sessions.get(event.alias)
            name = s.client_name if s is not None else ""
            addr = _pair(s.addr) if s is not None else None
            self.trust.on_pairing_required(event.alias, event.client_id, name, addr, now)

    # ---- feature timers ------------------------------------------------------------------

    def _reschedule(self) -> None:
        if self.bound is None:
            return
        self._timer.schedule(self.router.next_timer(), self.link.now())

    def _on_timer(self) -> None:
        with self.server.lock:
            self.router.timers(self.link.now())
            self.server.flush()
        self._reschedule()


def _pair(addr: tuple[Any, ...]) -> tuple[str, int]:
    return str(addr[0]), int(addr[1])


def _addr(addr: tuple[Any, ...]) -> str:
    return format_hostport(str(addr[0]), int(addr[1]))


def _uinput_gamepads() -> Gamepads:
    from wavry.platform.gamepad_uinput import VirtualGamepads

    return VirtualGamepads()


def _pad_remedy() -> str:
    from wavry.platform.gamepad_uinput import probe

    return probe().remedy
