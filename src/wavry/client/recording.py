"""The recording feature: every received access unit (and audio packet) remuxed into MP4
without re-encoding (back-end: :class:`wavry.media.record.Recorder`, injected).

Video units come from the decode thread (after decoding: the picture size is known), audio from
the event loop: one lock keeps the muxer single-threaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from wavry.client.pipeline import DecodeJob
from wavry.media.decode import DecodedFrame
from wavry.media.record import RecorderError
from wavry.runtime.features import Feature
from wavry.runtime.messages import AudioData

__all__ = ["RecordingFeature"]


class RecordingFeature(Feature):
    name = "recording"

    def __init__(self, recorder: Any, codec: Any, say: Callable[[str], None]) -> None:
        self.recorder: Any = recorder  # Recorder | None once stopped
        self.codec = codec
        self._say = say
        self._lock = threading.Lock()

    def _stop(self, exc: RecorderError) -> None:
        self._say(f"recording stopped: {exc}")
        self.recorder = None

    def video(self, job: DecodeJob, decoded: DecodedFrame) -> None:
        """One decoded access unit (decode thread)."""
        f = job.frame
        with self._lock:
            if self.recorder is None:
                return
            try:
                self.recorder.write(
                    f.data,
                    keyframe=f.keyframe,
                    timestamp_us=f.timestamp_us,
                    codec=self.codec,
                    width=decoded.width,
                    height=decoded.height,
                )
            except RecorderError as exc:
                self._stop(exc)

    def audio(self, event: AudioData) -> None:
        with self._lock:
            if self.recorder is None:
                return
            try:
                self.recorder.write_audio(event.payload, timestamp_us=event.timestamp_us)
            except RecorderError as exc:
                self._stop(exc)

    def close(self) -> None:
        with self._lock:
            if self.recorder is None:
                return
            try:
                self.recorder.close()
            except RecorderError as exc:
                self._say(f"recording not finished: {exc}")
            self.recorder = None
