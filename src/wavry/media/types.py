"""Interfaces and values shared by the capture backends."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from wavry.platform.probe import ProbeResult

__all__ = ["Capture", "CaptureError", "CapturedFrame", "ProbeResult"]


class CaptureError(RuntimeError):
    """A capture backend could not start or lost its source; the message says what to do."""


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
    """A source of frames. ``grab()`` blocks until the next frame is due and returns it."""

    name: str = "capture"

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
