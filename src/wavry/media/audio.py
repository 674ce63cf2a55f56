"""Audio media: Opus packets (PyAV libopus), the capture→encode sender and the bounded player.

docs/spec/RIFT.md §6: an ``AudioPacket`` carries exactly one raw Opus packet, 48 kHz stereo, 5 or
10 ms;
``timestamp_us`` is the sender's wall clock at its first sample; receivers play with ≤ 20 ms
buffering and drop the oldest audio when late.

- :class:`OpusEncoder` / :class:`OpusDecoder` wrap PyAV (libopus, ``application=lowdelay``).
- :class:`AudioSender` runs one thread: ``parec`` block → Opus → ``on_packet`` callback. Audio
  that waited in the capture pipe longer than a frame or two is discarded, never sent late.
- :class:`AudioPlayer` decodes and feeds ``pacat``. Its buffer (our queue + the pacat pipe) is
  capped at ``max_buffer_ms`` (20 ms): when a packet would exceed it, the oldest queued audio is
  dropped. Playback through ``pacat`` rather than SDL or GStreamer: the client already depends
  on the Pulse tools for capture, pacat's server-side buffer is set exactly with
  ``--latency-msec``, the process isolates the client from a stuck sound server, and the pipe
  fill level (``FIONREAD``) tells us precisely how much audio is still ahead of the speaker.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from wavry.platform.audio import (
    BYTES_PER_SAMPLE,
    CHANNELS,
    RATE,
    AudioError,
    CaptureTarget,
    PcmCapture,
    PcmPlayback,
)

__all__ = [
    "FRAME_MS_CHOICES",
    "AudioPlayer",
    "AudioSender",
    "OpusDecoder",
    "OpusEncoder",
    "PlayerStats",
    "SenderStats",
    "frame_bytes",
]

FRAME_MS_CHOICES = (5, 10)
DEFAULT_BITRATE = 96_000
OPUS_APPLICATION = "lowdelay"


def frame_samples(frame_ms: int) -> int:
    if frame_ms not in FRAME_MS_CHOICES:
        raise ValueError(f"Opus frame duration must be 5 or 10 ms, got {frame_ms}")
    return RATE * frame_ms // 1000


def frame_bytes(frame_ms: int) -> int:
    return frame_samples(frame_ms) * BYTES_PER_SAMPLE


class OpusEncoder:
    """s16le stereo PCM blocks of exactly one frame → one raw Opus packet each."""

    def __init__(self, frame_ms: int = 10, bitrate: int = DEFAULT_BITRATE) -> None:
        self.frame_ms = frame_ms
        self.samples = frame_samples(frame_ms)
        ctx: Any = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = RATE
        ctx.layout = "stereo"
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.options = {"frame_duration": str(frame_ms), "application": OPUS_APPLICATION}
        ctx.open()
        self._ctx = ctx
        self._pts = 0

    def encode(self, pcm: bytes) -> list[bytes]:
        if len(pcm) != self.samples * BYTES_PER_SAMPLE:
            raise ValueError(
                f"one Opus frame is {self.samples * BYTES_PER_SAMPLE} bytes of s16le stereo, "
                f"got {len(pcm)}"
            )
        arr = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(arr, format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = self._pts
        self._pts += self.samples
        return [bytes(p) for p in self._ctx.encode(frame)]

    @property
    def extradata(self) -> bytes:
        return bytes(self._ctx.extradata or b"")


class OpusDecoder:
    """One raw Opus packet → s16le interleaved stereo PCM."""

    def __init__(self) -> None:
        ctx: Any = av.CodecContext.create("opus", "r")
        ctx.sample_rate = RATE
        ctx.layout = "stereo"
        self._ctx = ctx

    def decode(self, packet: bytes) -> bytes:
        if not packet:
            raise ValueError("empty Opus packet")
        try:
            frames = self._ctx.decode(av.Packet(packet))
        except av.FFmpegError as exc:
            raise ValueError(f"undecodable Opus packet: {exc}") from exc
        out = []
        for f in frames:
            a = f.to_ndarray()  # fltp: (channels, samples)
            if a.ndim == 2 and a.shape[0] == 1 and CHANNELS == 2:
                a = np.vstack([a, a])
            pcm = np.clip(a.T * 32767.0, -32768, 32767).astype("<i2")
            out.append(pcm.tobytes())
        return b"".join(out)


# ---------------------------------------------------------------------------- sender


@dataclass(slots=True)
class SenderStats:
    blocks: int = 0
    packets: int = 0
    bytes: int = 0
    late_dropped_bytes: int = 0
    encode_us_sum: int = 0
    error: str = ""


OnPacket = Callable[[int, bytes], None]  # (timestamp_us, opus packet)


class AudioSender:
    """Capture → Opus → ``on_packet(timestamp_us, packet)`` on the capture thread.

    ``timestamp_us`` is the wall clock at the packet's first sample: a sample clock anchored
    at the first block's arrival, re-anchored when reads drift from it by more than a frame
    (a dropped backlog, a stall). ``on_error`` is called once if the capture ends."""

    def __init__(
        self,
        target: CaptureTarget,
        on_packet: OnPacket,
        *,
        frame_ms: int = 10,
        bitrate: int = DEFAULT_BITRATE,
        env: dict[str, str] | None = None,
        on_error: Callable[[str], None] | None = None,
        latency_ms: int | None = None,
        max_backlog_ms: int | None = None,
        stream_name: str = "wavry capture",
    ) -> None:
        self.frame_ms = frame_ms
        self.encoder = OpusEncoder(frame_ms, bitrate)
        self.block = frame_bytes(frame_ms)
        self.capture = PcmCapture(
            target,
            self.block,
            latency_ms=latency_ms if latency_ms is not None else max(2, frame_ms // 2),
            env=env,
            stream_name=stream_name,
        )
        self.max_backlog = frame_bytes(frame_ms) * 2
        if max_backlog_ms is not None:
            self.max_backlog = RATE * max_backlog_ms // 1000 * BYTES_PER_SAMPLE
        self.on_packet = on_packet
        self.on_error = on_error
        self.stats = SenderStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._anchor = 0.0
        self._samples = 0
        self._gone = ""
        self._watch: threading.Thread | None = None

    def start(self) -> AudioSender:
        self.capture.start()
        self._thread = threading.Thread(target=self._run, name="wavry-audio-capture", daemon=True)
        self._thread.start()
        if self.capture.target.check_gone is not None:
            self._watch = threading.Thread(
                target=self._watchdog, name="wavry-audio-watch", daemon=True
            )
            self._watch.start()
        return self

    def _watchdog(self, every_s: float = 0.5) -> None:
        """End the capture when its target vanished (an application quit): a per-stream monitor
        would otherwise just go quiet."""
        check = self.capture.target.check_gone
        assert check is not None
        while not self._stop.wait(every_s):
            try:
                why = check()
            except AudioError as exc:
                why = str(exc)
            if why:
                self._gone = why
                self.capture.terminate()  # ends the blocked read: _run reports _gone
                return

    def _timestamp(self, now: float, samples: int, behind: int = 0) -> int:
        """Wall clock of the first sample of the block just read at ``now``, with ``behind``
        samples captured after it already waiting in the pipe."""
        dur = (samples + behind) / RATE
        measured = now - dur
        expected = self._anchor + self._samples / RATE
        if self._samples == 0 or abs(measured - expected) > self.frame_ms / 1000:
            self._anchor, self._samples = measured, 0
            expected = measured
        elif measured < expected:
            # reads can only be late, never early: an earlier reading is the better anchor
            self._anchor -= expected - measured
            expected = measured
        self._samples += samples
        return int(expected * 1_000_000)

    def _run(self) -> None:
        samples = self.encoder.samples
        try:
            while not self._stop.is_set():
                pcm = self.capture.read_block()
                now = time.time()
                backlog = self.capture.backlog()
                if backlog > self.max_backlog:
                    # we were late (a stall): what waited is stale, skip to the newest audio
                    drop = (backlog - self.block) // self.block * self.block
                    self.capture.discard(drop)
                    self.stats.late_dropped_bytes += drop + len(pcm)
                    self._samples = 0  # re-anchor on the next block
                    continue
                self.stats.blocks += 1
                ts = self._timestamp(now, samples, backlog // BYTES_PER_SAMPLE)
                t0 = time.perf_counter()
                packets = self.encoder.encode(pcm)
                self.stats.encode_us_sum += int((time.perf_counter() - t0) * 1e6)
                for p in packets:
                    self.stats.packets += 1
                    self.stats.bytes += len(p)
                    self.on_packet(ts, p)
        except (AudioError, OSError) as exc:
            if not self._stop.is_set():
                self.stats.error = self._gone or str(exc)
                if self.on_error is not None:
                    self.on_error(self.stats.error)
        except (ValueError, av.FFmpegError) as exc:
            self.stats.error = f"Opus encoder: {exc}"
            if self.on_error is not None:
                self.on_error(self.stats.error)

    def stop(self) -> None:
        self._stop.set()
        self.capture.stop()  # ends a blocked read
        for t in (self._thread, self._watch):
            if t is not None:
                t.join(timeout=3)
        self._thread = self._watch = None


# ---------------------------------------------------------------------------- player


@dataclass(slots=True)
class PlayerStats:
    packets: int = 0
    decoded_bytes: int = 0
    dropped_bytes: int = 0  # dropped from the queue (oldest first) to stay within the budget
    drop_events: int = 0  # times audio had to be dropped
    trimmed_bytes: int = 0  # slack removed by the latency trim (see AudioPlayer)
    decode_errors: int = 0
    written_bytes: int = 0
    error: str = ""
    buffer_ms_samples: list[float] = field(default_factory=list)

    @property
    def dropped_ms(self) -> float:
        return self.dropped_bytes / BYTES_PER_SAMPLE / RATE * 1000

    @property
    def dropped_packets(self) -> int:
        """Dropped audio in packet equivalents (10 ms)."""
        return round(self.dropped_ms / 10)


SLICE_MS = 2.5  # queue granularity: what is dropped (oldest first) and written at a time
TRIM_WINDOW_S = 0.5


class AudioPlayer:
    """Decode Opus packets and play them through ``pacat``, buffering ≤ ``max_buffer_ms``.

    ``push()`` (any thread) decodes and queues the PCM in 2.5 ms slices; a writer thread moves
    up to ``write_ms`` of them into the pacat pipe whenever the pipe holds ≤ ``pipe_low_ms``.
    When the queue plus the pipe hold more than ``max_buffer_ms``, the oldest queued slices are
    dropped (a 2.5 ms granularity keeps each glitch short and the buffer within its budget).

    Below the budget, a buffer keeps whatever level it started at (production and consumption
    run at the same rate), so it is also trimmed: when, over a 0.5 s window, there was always
    more than one slice buffered when a packet arrived, that slack is latency nobody needs and
    the oldest slice is dropped. The level converges to what the arrival jitter requires."""

    def __init__(
        self,
        sink: str | None = None,
        *,
        env: dict[str, str] | None = None,
        max_buffer_ms: float = 20.0,
        pipe_low_ms: float = 5.0,
        write_ms: float = 10.0,
        server_latency_ms: int = 10,
        on_error: Callable[[str], None] | None = None,
        stream_name: str = "wavry playback",
    ) -> None:
        self.decoder = OpusDecoder()
        self.playback = PcmPlayback(
            sink, latency_ms=server_latency_ms, env=env, stream_name=stream_name
        )
        self.max_bytes = int(RATE * max_buffer_ms / 1000) * BYTES_PER_SAMPLE
        self.low_bytes = int(RATE * pipe_low_ms / 1000) * BYTES_PER_SAMPLE
        self.slice_bytes = int(RATE * SLICE_MS / 1000) * BYTES_PER_SAMPLE
        self.write_slices = max(1, round(write_ms / SLICE_MS))
        self.on_error = on_error
        self.stats = PlayerStats()
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._window_end = 0.0
        self._window_min = 0

    def start(self) -> AudioPlayer:
        self.playback.start()
        self._thread = threading.Thread(target=self._run, name="wavry-audio-play", daemon=True)
        self._thread.start()
        return self

    @property
    def failed(self) -> bool:
        return bool(self.stats.error)

    def buffered_bytes(self) -> int:
        # under the lock: the writer pops slices under it and writes them to the pipe after, so
        # read unlocked a slice could be counted twice (in the queue, then in the pipe)
        with self._cond:
            with contextlib.suppress(OSError):
                return self._queued + self.playback.queued()
            return self._queued

    def push(self, packet: bytes) -> bool:
        """Decode and queue one Opus packet; False if it could not be decoded."""
        self.stats.packets += 1
        try:
            pcm = self.decoder.decode(packet)
        except ValueError:
            self.stats.decode_errors += 1
            return False
        self.stats.decoded_bytes += len(pcm)
        if self.stats.error:
            return True
        with self._cond:
            in_pipe = 0
            with contextlib.suppress(OSError):
                in_pipe = self.playback.queued()
            n = self.slice_bytes
            self._trim(self._queued + in_pipe)
            for i in range(0, len(pcm), n):
                self._queue.append(pcm[i : i + n])
            self._queued += len(pcm)
            dropped = False
            while self._queue and self._queued + in_pipe > self.max_bytes:
                old = self._queue.popleft()
                self._queued -= len(old)
                self.stats.dropped_bytes += len(old)
                dropped = True
            if dropped:
                self.stats.drop_events += 1
            if len(self.stats.buffer_ms_samples) < 100_000:
                ms = (self._queued + in_pipe) / BYTES_PER_SAMPLE / RATE * 1000
                self.stats.buffer_ms_samples.append(ms)
            self._cond.notify()
        return True

    def _trim(self, level: int) -> None:
        """Called with the lock held, with the level found when a packet arrives."""
        now = time.monotonic()
        if now >= self._window_end:
            if self._window_end and self._window_min > self.slice_bytes and self._queue:
                old = self._queue.popleft()
                self._queued -= len(old)
                self.stats.trimmed_bytes += len(old)
            self._window_end = now + TRIM_WINDOW_S
            self._window_min = level
        else:
            self._window_min = min(self._window_min, level)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stop:
                        self._cond.wait(0.2)
                    if self._stop:
                        return
                # pace: keep the pipe short so late audio stays in our queue (droppable)
                while not self._stop:
                    level = self.playback.queued()
                    if level <= self.low_bytes:
                        break
                    time.sleep(min(0.002, max(0.0005, (level - self.low_bytes) / (RATE * 4))))
                with self._cond:
                    if self._stop or not self._queue:
                        continue
                    parts = [
                        self._queue.popleft()
                        for _ in range(min(self.write_slices, len(self._queue)))
                    ]
                    pcm = b"".join(parts)
                    self._queued -= len(pcm)
                self.playback.write(pcm)
                self.stats.written_bytes += len(pcm)
        except (AudioError, OSError) as exc:
            if not self._stop:
                self.stats.error = str(exc)
                if self.on_error is not None:
                    self.on_error(str(exc))

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self.playback.stop()
