"""Typed application events: the one place where RIFT's protobuf application messages
(docs/spec/RIFT.md §5, §9) become Python values and back.

Everything above this boundary — the window, the injector, the features of the host and client
runtimes, the desktop app — works with these frozen dataclasses and never sees protobuf.
Transport-internal messages (Ping/Pong, Nack, TransportFeedback, FEC, Hello/pairing) never reach
it: the sans-I/O core consumes them. `decode()` answers None for a message that is not an
application event (or is malformed); nothing here raises on peer input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wavry.rift import rift_pb2

# ---- input (client → host), docs/spec/RIFT.md §9 ----------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyInput:
    """A key by Linux evdev ``KEY_*`` code."""

    keycode: int
    pressed: bool
    timestamp_us: int = 0


@dataclass(frozen=True, slots=True)
class PointerMove:
    """Absolute pointer position, x and y in [0, 1] over the streamed picture."""

    x: float
    y: float
    timestamp_us: int = 0


@dataclass(frozen=True, slots=True)
class PointerMotion:
    """Relative motion in stream pixels (pointer lock)."""

    dx: int
    dy: int
    timestamp_us: int = 0


@dataclass(frozen=True, slots=True)
class ButtonInput:
    """Mouse button 1 left, 2 middle, 3 right, 4 back, 5 forward."""

    button: int
    pressed: bool
    timestamp_us: int = 0


@dataclass(frozen=True, slots=True)
class ScrollInput:
    """Wheel notches: positive dy scrolls up/away, positive dx right."""

    dx: float
    dy: float
    timestamp_us: int = 0


@dataclass(frozen=True, slots=True)
class GamepadInput:
    """The axes and buttons of one pad that changed (docs/spec/RIFT.md §9 numbering)."""

    pad: int
    axes: tuple[tuple[int, float], ...] = ()
    buttons: tuple[tuple[int, bool], ...] = ()
    timestamp_us: int = 0


InputEvent = KeyInput | PointerMove | PointerMotion | ButtonInput | ScrollInput | GamepadInput

# ---- everything else an application sees ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioData:
    """One raw Opus packet; ``timestamp_us`` is the sender's wall clock at its first sample."""

    timestamp_us: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ClipboardText:
    text: str


@dataclass(frozen=True, slots=True)
class Monitor:
    id: int
    name: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class MonitorsOffered:
    monitors: tuple[Monitor, ...]


@dataclass(frozen=True, slots=True)
class MonitorSelected:
    monitor_id: int


@dataclass(frozen=True, slots=True)
class LatencyReport:
    """The client's per-stage times of one presented frame (µs)."""

    frame_id: int
    capture_us: int = 0
    encode_us: int = 0
    network_us: int = 0
    decode_us: int = 0
    render_us: int = 0
    total_us: int = 0


@dataclass(frozen=True, slots=True)
class KeyframeNeeded:
    """ReferenceInvalidation: the receiver lost a frame its decoder needs."""

    last_valid_frame_id: int


@dataclass(frozen=True, slots=True)
class RateRequest:
    """The client's limits for the stream it receives (``CongestionControl`` client → host,
    docs/protocol-notes.md): at most ``bitrate_kbps`` and ``fps``; 0 = no limit of its own.
    The host's rate control stays within them (and within its own ceiling). The host never
    sees this event: its transport consumes the message (``RateChanged`` from the peer)."""

    bitrate_kbps: int = 0
    fps: int = 0


@dataclass(frozen=True, slots=True)
class FileMessage:
    """File-transfer traffic (FileHeader, FileStatus, FileChunk). The file feature owns its
    protobuf handling (it seals chunks itself), so the message travels through untouched."""

    message: rift_pb2.Message = field(compare=False)


AppEvent = (
    InputEvent
    | AudioData
    | ClipboardText
    | MonitorsOffered
    | MonitorSelected
    | LatencyReport
    | KeyframeNeeded
    | RateRequest
    | FileMessage
)


def _control(**kw: object) -> rift_pb2.Message:
    return rift_pb2.Message(control=rift_pb2.ControlMessage(**kw))  # type: ignore[arg-type]


def encode(event: AppEvent) -> rift_pb2.Message:
    """The RIFT message carrying ``event``."""
    if isinstance(event, FileMessage):
        return event.message
    if isinstance(event, AudioData):
        audio = rift_pb2.AudioPacket(timestamp_us=event.timestamp_us, payload=event.payload)
        return rift_pb2.Message(media=rift_pb2.MediaMessage(audio=audio))
    if isinstance(event, ClipboardText):
        return _control(clipboard=rift_pb2.ClipboardMessage(text=event.text))
    if isinstance(event, MonitorsOffered):
        infos = [
            rift_pb2.MonitorInfo(id=m.id, name=m.name, width=m.width, height=m.height)
            for m in event.monitors
        ]
        return _control(monitor_list=rift_pb2.MonitorList(monitors=infos))
    if isinstance(event, MonitorSelected):
        return _control(select_monitor=rift_pb2.SelectMonitor(monitor_id=event.monitor_id))
    if isinstance(event, LatencyReport):
        return _control(
            latency=rift_pb2.LatencyStats(
                frame_id=event.frame_id,
                capture_us=event.capture_us,
                encode_us=event.encode_us,
                network_us=event.network_us,
                decode_us=event.decode_us,
                render_us=event.render_us,
                total_us=event.total_us,
            )
        )
    if isinstance(event, KeyframeNeeded):
        rfi = rift_pb2.ReferenceInvalidation(last_valid_frame_id=event.last_valid_frame_id)
        return _control(rfi=rfi)
    if isinstance(event, RateRequest):
        cc = rift_pb2.CongestionControl(
            target_bitrate_kbps=event.bitrate_kbps, target_fps=event.fps
        )
        return _control(congestion=cc)
    return rift_pb2.Message(input=encode_input(event))


def encode_input(event: InputEvent) -> rift_pb2.InputMessage:
    ts = event.timestamp_us
    if isinstance(event, KeyInput):
        return rift_pb2.InputMessage(
            timestamp_us=ts, key=rift_pb2.Key(keycode=event.keycode, pressed=event.pressed)
        )
    if isinstance(event, PointerMove):
        return rift_pb2.InputMessage(
            timestamp_us=ts, mouse_move=rift_pb2.MouseMove(x=event.x, y=event.y)
        )
    if isinstance(event, PointerMotion):
        return rift_pb2.InputMessage(
            timestamp_us=ts, mouse_motion=rift_pb2.MouseMotion(dx=event.dx, dy=event.dy)
        )
    if isinstance(event, ButtonInput):
        return rift_pb2.InputMessage(
            timestamp_us=ts,
            mouse_button=rift_pb2.MouseButton(button=event.button, pressed=event.pressed),
        )
    if isinstance(event, ScrollInput):
        return rift_pb2.InputMessage(
            timestamp_us=ts, scroll=rift_pb2.Scroll(dx=event.dx, dy=event.dy)
        )
    pad = rift_pb2.GamepadMessage(
        gamepad_id=event.pad,
        axes=[rift_pb2.GamepadAxis(axis=a, value=v) for a, v in event.axes],
        buttons=[rift_pb2.GamepadButton(button=b, pressed=p) for b, p in event.buttons],
    )
    return rift_pb2.InputMessage(timestamp_us=ts, gamepad=pad)


def decode_input(msg: rift_pb2.InputMessage) -> InputEvent | None:
    ts = msg.timestamp_us
    kind = msg.WhichOneof("event")
    if kind == "key":
        return KeyInput(msg.key.keycode, msg.key.pressed, ts)
    if kind == "mouse_move":
        return PointerMove(msg.mouse_move.x, msg.mouse_move.y, ts)
    if kind == "mouse_motion":
        return PointerMotion(msg.mouse_motion.dx, msg.mouse_motion.dy, ts)
    if kind == "mouse_button":
        return ButtonInput(msg.mouse_button.button, msg.mouse_button.pressed, ts)
    if kind == "scroll":
        return ScrollInput(msg.scroll.dx, msg.scroll.dy, ts)
    if kind == "gamepad":
        g = msg.gamepad
        return GamepadInput(
            g.gamepad_id,
            tuple((a.axis, a.value) for a in g.axes),
            tuple((b.button, b.pressed) for b in g.buttons),
            ts,
        )
    return None


_FILE_CONTROL = frozenset({"file_header", "file_status"})


def decode(msg: rift_pb2.Message) -> AppEvent | None:
    """The application event ``msg`` carries, or None (not an application message)."""
    kind = msg.WhichOneof("content")
    if kind == "input":
        return decode_input(msg.input)
    if kind == "media":
        media = msg.media.WhichOneof("content")
        if media == "audio":
            return AudioData(msg.media.audio.timestamp_us, msg.media.audio.payload)
        if media == "file_chunk":
            return FileMessage(msg)
        return None  # video and FEC belong to the transport
    if kind != "control":
        return None
    ctl = msg.control
    which = ctl.WhichOneof("content")
    if which in _FILE_CONTROL:
        return FileMessage(msg)
    if which == "clipboard":
        return ClipboardText(ctl.clipboard.text)
    if which == "monitor_list":
        return MonitorsOffered(
            tuple(Monitor(m.id, m.name, m.width, m.height) for m in ctl.monitor_list.monitors)
        )
    if which == "select_monitor":
        return MonitorSelected(ctl.select_monitor.monitor_id)
    if which == "latency":
        lat = ctl.latency
        return LatencyReport(
            lat.frame_id,
            lat.capture_us,
            lat.encode_us,
            lat.network_us,
            lat.decode_us,
            lat.render_us,
            lat.total_us,
        )
    if which == "rfi":
        return KeyframeNeeded(ctl.rfi.last_valid_frame_id)
    return None
