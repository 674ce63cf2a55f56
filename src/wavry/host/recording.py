"""Recording: the stream as it is sent, remuxed to MP4 without re-encoding (docs/recording.md),
audio next to it; one file per stream (a new file once every session has left)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wavry.host.routing import HostFeature
from wavry.media.encode import EncodedFrame
from wavry.media.record import Recorder, RecorderError, default_record_dir
from wavry.media.types import CapturedFrame
from wavry.runtime.streamer import Streamer

__all__ = ["RecordingFeature"]


class RecordingFeature(HostFeature):
    name = "recording"

    def __init__(self, say: Callable[[str], None], record_dir: Path | None, *, audio: bool) -> None:
        self.say = say
        self.recorder: Recorder | None = Recorder(
            record_dir or default_record_dir(),
            prefix="wavry-host",
            on_file=lambda p: self.say(f"recording saved: {p}"),
        )
        self.recorder.audio = audio  # an Opus track next to the video

    def on_video(self, frame: CapturedFrame, encoded: EncodedFrame, streamer: Streamer) -> None:
        if self.recorder is None:
            return
        enc = streamer.encoder
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

    def on_audio(self, timestamp_us: int, packet: bytes) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.write_audio(packet, timestamp_us=timestamp_us)
        except RecorderError as exc:
            self.say(f"recording stopped: {exc}")
            self.recorder = None

    def finish_file(self) -> None:
        """The stream stopped: the next one goes to a new file."""
        if self.recorder is None:
            return
        try:
            self.recorder.close()
        except RecorderError as exc:
            self.say(f"recording not finished: {exc}")
            self.recorder = None

    def close(self) -> None:
        self.finish_file()
