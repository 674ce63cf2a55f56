"""Recording: remux received access units into MP4 with PyAV, without re-encoding.

One file per segment: a new file starts when the codec or the resolution changes, and every
segment starts at a keyframe (frames before the first keyframe of a segment are skipped).
Timestamps come from the host capture clock (``timestamp_us``), so the file keeps the real
timing of the stream, gaps included. The MP4 index is written when a segment closes; call
:meth:`Recorder.close` at the end of the session.

Audio: with ``audio=True`` each segment also gets an Opus track (48 kHz stereo) and
:meth:`Recorder.write_audio` muxes the raw Opus packets as they are (no re-encode), timed by the
same host clock as the video; audio before a segment's first keyframe is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from wavry.media.encode import Codec, normal_scheduling

__all__ = ["Recorder", "RecorderError", "default_record_dir"]

_MUX_CODEC = {Codec.H264: "h264", Codec.HEVC: "hevc", Codec.AV1: "libsvtav1"}
_US = Fraction(1, 1_000_000)
_AUDIO_RATE = 48_000
_AUDIO_TB = Fraction(1, _AUDIO_RATE)


class RecorderError(RuntimeError):
    """A recording file cannot be created or written."""


def default_record_dir() -> Path:
    """``$XDG_VIDEOS_DIR/wavry`` if set, else ``~/Videos/wavry``."""
    env = os.environ.get("XDG_VIDEOS_DIR")
    return (Path(env) if env else Path.home() / "Videos") / "wavry"


class Recorder:
    """Write access units to ``directory/<prefix>-<time>-<n>-<codec>-<w>x<h>.mp4``."""

    def __init__(
        self,
        directory: Path,
        prefix: str = "wavry",
        *,
        on_file: Callable[[Path], None] | None = None,
        audio: bool = False,
    ) -> None:
        #: add an Opus track to segments opened from now on (see write_audio)
        self.audio = audio
        self.audio_written = 0
        self.audio_skipped = 0
        self._audio_stream: Any = None
        self._audio_next = 0
        self.directory = Path(directory)
        self.prefix = prefix
        self.on_file = on_file
        self.files: list[Path] = []
        self.frames_written = 0
        self.frames_skipped = 0
        self._container: Any = None
        self._stream: Any = None
        self._key: tuple[Codec, int, int] | None = None
        self._first_ts = 0
        self._last_pts = -1
        self._path: Path | None = None
        self._fresh = False  # the open segment's first packet is still to come

    def write(
        self,
        data: bytes,
        *,
        keyframe: bool,
        timestamp_us: int,
        codec: Codec,
        width: int,
        height: int,
    ) -> None:
        key = (Codec(codec), width, height)
        if key != self._key:
            self._close_segment()
            if not keyframe:
                self.frames_skipped += 1
                return
            self._open_segment(key, timestamp_us)
        pts = max(timestamp_us - self._first_ts, self._last_pts + 1)
        self._last_pts = pts
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = _US
        packet.pts = packet.dts = pts
        packet.is_keyframe = keyframe
        try:
            if self._fresh:
                # the first packet opens the stream's codec context: for AV1 that starts
                # SVT-AV1, which as root makes this thread and its own real-time
                self._fresh = False
                with normal_scheduling():
                    self._container.mux(packet)
            else:
                self._container.mux(packet)
        except av.FFmpegError as exc:
            raise RecorderError(f"cannot write {self._path}: {exc}") from exc
        self.frames_written += 1

    def write_audio(self, data: bytes, *, timestamp_us: int, samples: int | None = None) -> None:
        """Mux one raw Opus packet (48 kHz stereo) whose first sample is at ``timestamp_us``."""
        stream = self._audio_stream
        if stream is None or self._container is None:
            self.audio_skipped += 1
            return
        if samples is None:
            samples = _opus_samples(data)
        at = (timestamp_us - self._first_ts) * _AUDIO_RATE // 1_000_000
        if at < 0:
            self.audio_skipped += 1
            return
        # sample-exact runs; follow the host clock only across a real gap (dropped audio)
        nxt = self._audio_next
        pts = nxt if abs(at - nxt) < samples else max(at, nxt)
        packet = av.Packet(data)
        packet.stream = stream
        packet.time_base = _AUDIO_TB
        packet.pts = packet.dts = pts
        packet.duration = samples
        try:
            self._container.mux(packet)
        except av.FFmpegError as exc:
            raise RecorderError(f"cannot write audio to {self._path}: {exc}") from exc
        self._audio_next = pts + samples
        self.audio_written += 1

    def close(self) -> None:
        self._close_segment()

    def _open_segment(self, key: tuple[Codec, int, int], timestamp_us: int) -> None:
        codec, width, height = key
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = len(self.files) + 1
        path = self.directory / f"{self.prefix}-{stamp}-{n:02d}-{codec.value}-{width}x{height}.mp4"
        try:
            container: Any = av.open(str(path), "w", format="mp4")
            stream = container.add_stream(_MUX_CODEC[codec])
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise RecorderError(f"cannot create {path}: {exc}") from exc
        stream.width, stream.height = width, height
        stream.time_base = _US
        self._audio_stream = None
        if self.audio:
            try:
                # an encoder context only for the track's parameters (OpusHead); packets are
                # muxed as received, never re-encoded
                a = container.add_stream("libopus", rate=_AUDIO_RATE)
                a.layout = "stereo"
                a.codec_context.options = {"application": "lowdelay"}
                a.time_base = _AUDIO_TB
            except (av.FFmpegError, ValueError) as exc:
                raise RecorderError(f"cannot add an Opus track to {path}: {exc}") from exc
            self._audio_stream = a
            self._audio_next = 0
        self._container, self._stream, self._key, self._path = container, stream, key, path
        self._first_ts = timestamp_us
        self._last_pts = -1
        self._fresh = True

    def _close_segment(self) -> None:
        container, path = self._container, self._path
        self._container = self._stream = self._key = self._path = None
        self._audio_stream = None
        if container is None or path is None:
            return
        try:
            container.close()
        except av.FFmpegError as exc:
            raise RecorderError(f"cannot finish {path}: {exc}") from exc
        self.files.append(path)
        if self.on_file is not None:
            self.on_file(path)


def _opus_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        per_frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        per_frame = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        per_frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = packet[1] & 0x3F if len(packet) > 1 else 1
    return per_frame * frames
