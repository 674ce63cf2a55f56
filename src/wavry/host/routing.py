"""The host's typed router: application events from clients (:mod:`wavry.runtime.messages`)
plus the host-local signals the session core raises for a feature (a new target bitrate, frames
to skip, a session that went silent). Features never see protobuf or the core's types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from wavry.media.encode import Codec
from wavry.runtime.features import Feature, PeerInfo, Router
from wavry.runtime.messages import AppEvent

__all__ = [
    "FramesToSkip",
    "HostFeature",
    "HostRouter",
    "HostSignal",
    "PeerInfo",
    "RateTarget",
    "RoutedEvent",
    "SessionStalled",
    "StreamParams",
    "stream_of",
]


@dataclass(frozen=True, slots=True)
class RateTarget:
    """Congestion control's new target for this session's video."""

    bitrate_kbps: int
    fps: int


@dataclass(frozen=True, slots=True)
class FramesToSkip:
    """The client asked the encoder to skip frames (EncoderControl)."""

    count: int


@dataclass(frozen=True, slots=True)
class SessionStalled:
    """Nothing authentic arrived from the session for ``silence_s`` (the core's stall)."""

    silence_s: float


HostSignal = RateTarget | FramesToSkip | SessionStalled
RoutedEvent = AppEvent | HostSignal


@dataclass(frozen=True, slots=True)
class StreamParams:
    """The stream a session was accepted with (HelloAck): ``PeerInfo.extra["stream"]``."""

    codec: Codec
    width: int
    height: int
    fps: int
    bitrate_kbps: int


def stream_of(peer: PeerInfo) -> StreamParams | None:
    stream = peer.extra.get("stream")
    return stream if isinstance(stream, StreamParams) else None


class HostFeature(Feature):
    """A host feature: gets client events and host signals through :class:`HostRouter`."""

    def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
        return False


class HostRouter(Router):
    """The runtime's one router; also carries :data:`HostSignal` events."""

    def dispatch(self, peer: int, event: RoutedEvent, now: float) -> bool:
        # Router only looks at the event's class: host signals travel the same way
        return super().dispatch(peer, cast(AppEvent, event), now)
