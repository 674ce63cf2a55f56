"""What a running host reports: typed notices to one observer callback.

The CLI prints them (:mod:`wavry.host.console`); the desktop app shows them (the sharing state,
connected clients, pairing requests). An observer must return quickly: it runs on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "ClientConnecting",
    "ClientJoined",
    "ClientLeft",
    "ClientMoved",
    "ClientRefused",
    "ClientStalled",
    "HostNotice",
    "HostStarted",
    "HostStopped",
    "InputReleased",
    "LatencyWindow",
    "Notice",
    "Observer",
    "Paired",
    "PairingAttemptFailed",
    "PairingCodeShown",
    "PairingRequested",
]


@dataclass(frozen=True, slots=True)
class HostStarted:
    name: str
    wavry_id: str
    listen: str  # ADDR:PORT the socket is bound to
    connect_addresses: tuple[str, ...]  # ADDR:PORT a client can give `wavry connect`
    trust_any: bool
    trusted_devices: int
    picture: str  # "x11 1280x720@60 (…)" or "" when there is no picture source
    picture_problem: str = ""  # why there is no picture ("" when there is one)
    audio: str = ""  # "system mix …" or "off (…)"


@dataclass(frozen=True, slots=True)
class HostStopped:
    """The host stopped; ``error`` says why when it was not asked to."""

    error: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """A line worth showing (encoder chosen, clipboard on, a file received …)."""

    text: str
    peer: int | None = None


@dataclass(frozen=True, slots=True)
class ClientConnecting:
    """A handshake completed; the session is not accepted yet."""

    peer: int
    wavry_id: str
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class ClientJoined:
    peer: int
    wavry_id: str
    name: str
    address: str
    width: int
    height: int
    fps: int


@dataclass(frozen=True, slots=True)
class ClientRefused:
    peer: int
    wavry_id: str
    reason: str  # PAIRING_REQUIRED, BUSY, …
    message: str


@dataclass(frozen=True, slots=True)
class ClientLeft:
    peer: int
    wavry_id: str
    reason: str  # timeout, user, shutdown, …
    message: str


@dataclass(frozen=True, slots=True)
class ClientMoved:
    peer: int
    address: str


@dataclass(frozen=True, slots=True)
class ClientStalled:
    peer: int
    silence_s: float


@dataclass(frozen=True, slots=True)
class InputReleased:
    """Keys, buttons or pads a client held were released for it (it went quiet, stalled or
    left)."""

    peer: int
    why: str
    keys: tuple[int, ...] = ()
    buttons: tuple[int, ...] = ()
    gamepads: bool = False


@dataclass(frozen=True, slots=True)
class LatencyWindow:
    """End-to-end latency one client reported over the last window (its own numbers only)."""

    peer: int
    p50_ms: float
    max_ms: float
    frames: int


@dataclass(frozen=True, slots=True)
class PairingCodeShown:
    """A pairing code is active: show it to the owner, who types it on the client."""

    code: str  # 6 digits
    valid_s: float
    attempts: int


@dataclass(frozen=True, slots=True)
class PairingRequested:
    """An unknown device asks to pair. The owner compares its name and ID with the client's
    and either lets the code shown be typed there, or refuses it with
    ``HostRuntime.refuse_pairing(peer)``."""

    peer: int
    wavry_id: str
    name: str
    address: str
    code: str = ""  # the active code ("" when none could be issued: too many attempts)
    why_no_code: str = ""


@dataclass(frozen=True, slots=True)
class PairingAttemptFailed:
    wavry_id: str
    attempts_left: int


@dataclass(frozen=True, slots=True)
class Paired:
    wavry_id: str
    name: str


HostNotice = (
    HostStarted
    | HostStopped
    | Notice
    | ClientConnecting
    | ClientJoined
    | ClientRefused
    | ClientLeft
    | ClientMoved
    | ClientStalled
    | InputReleased
    | LatencyWindow
    | PairingCodeShown
    | PairingRequested
    | PairingAttemptFailed
    | Paired
)

Observer = Callable[[HostNotice], None]


@dataclass(slots=True)
class ClientStats:
    """Live figures of one connected client (``HostRuntime.clients()``)."""

    frames_sent: int = 0
    bitrate_target_kbps: int = 0
    rtt_ms: float | None = None
    latency_p50_ms: float | None = None  # the client's last latency window
    latency_max_ms: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
