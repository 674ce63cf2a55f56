"""Interfaces and values shared by the capture backends."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from wavry.platform.probe import ProbeResult

__all__ = ["Capture", "CaptureError", "CaptureLost", "CapturedFrame", "ProbeResult"]


class CaptureError(RuntimeError):
    """A capture backend could not start or lost its source; the message says what to do."""


class CaptureLost(CaptureError):
    """The source is gone for good (the X display closed, the portal session ended): retrying
    cannot help."""


@dataclass
class CapturedFrame:
    """One captured picture.

    ``image`` is an ``av.VideoFrame`` (yuv420p for the synthetic source, bgr0 for X11) that
    :class:`wavry.media.encode.Encoder` takes without another copy. ``capture_ts`` is the host
    wall clock (Unix epoch, µs) when the picture was taken (docs/spec/RIFT.md §6 ``timestamp_us``);
    ``capture_us`` is how long taking it cost.
    """

    image: Any
    capture_ts: int
    capture_us: int
    frame_index: int


class Capture(abc.ABC):
    """A source of frames. ``grab()`` blocks until the next frame is due and returns it.

    A source that knows when its picture changes (X11 with DAMAGE) returns from ``grab()`` only
    after a change, at most ``fps`` times a second; ``request_frame()`` (any thread) makes the
    next ``grab()`` return even if nothing changed (a keyframe for a new client) and wakes a
    ``grab()`` that is waiting. Sources on a fixed clock ignore it.
    """

    name: str = "capture"
    #: True when grab() waits for changes (else it runs on a fixed clock)
    on_change: bool = False

    def request_frame(self) -> None:  # noqa: B027 - optional hook
        """Make the next grab() return at once (at the frame-rate cap), changed or not."""

    def set_rate(self, fps: float) -> None:  # noqa: B027 - optional hook
        """Take at most ``fps`` pictures a second from now on (the stream's rate). Sources that
        cannot change their rate ignore it; the streamer then drops what comes too soon."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @property
    @abc.abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames ``grab()`` returns."""

    @property
    @abc.abstractmethod
    def fps(self) -> float: ...

    @abc.abstractmethod
    def grab(self) -> CapturedFrame: ...

    def __enter__(self) -> Capture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
