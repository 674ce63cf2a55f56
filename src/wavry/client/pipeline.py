"""Decode apart from presentation: one decode thread, a hand-off that keeps only the newest.

The event loop hands every complete access unit to :meth:`DecodeWorker.submit` (never blocks)
and goes back to the socket. The decode thread decodes every unit in order — later frames
reference earlier ones — and prepares a picture for the window (colour conversion, scaling;
PyAV releases the GIL for both) only for the newest unit: while more units wait behind it, a
decoded picture is dropped unconverted. A prepared picture goes to :class:`LatestFrame`; a
newer one replaces it there (the older is dropped and counted), and the window thread takes the
newest when it is woken. Nothing queues behind a slow window, and a window that shows frames
slower than they arrive shows the newest each time.

A decoder that was held up (its thread not scheduled on a busy machine) catches up at its own
speed — about ten times real time for 720p here — and only the newest of the backlog is
converted and shown. Only a backlog that would take longer than ``max_backlog_s`` to decode
(or more than ``max_queue`` units) is dropped, and the decoder skips to the next keyframe (the
caller asks the host for one): a keyframe round trip freezes the picture for longer than
decoding a short backlog does. The frame-rate request (:class:`wavry.client.video.DecodeLoad`)
keeps that rare.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from wavry.media.decode import DecodedFrame

__all__ = ["DecodeJob", "DecodeWorker", "LatestFrame", "ReadyFrame"]

_log = logging.getLogger("wavry.client")

MAX_BACKLOG_S = 0.25  # decode time of the waiting units beyond which they are dropped
MAX_QUEUE = 120  # units waiting, whatever their decode time (2 s at 60 fps)
FIRST_DECODE_S = 0.01  # assumed per unit before the first one was decoded


@dataclass(slots=True)
class DecodeJob:
    """One access unit and when it was handed over (monotonic seconds)."""

    frame: Any  # wavry.rift.assembler.AssembledFrame
    handed_at: float


@dataclass(slots=True)
class ReadyFrame:
    """A decoded (and, with a window, prepared) frame with its timeline (monotonic seconds)."""

    job: DecodeJob
    decoded: DecodedFrame
    prepared: Any  # wavry.client.present.PreparedFrame | None (headless)
    decode_start: float
    decode_end: float
    prepared_at: float


class LatestFrame:
    """A one-slot hand-off between threads: ``put`` replaces, ``take`` empties."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: ReadyFrame | None = None

    def put(self, item: ReadyFrame) -> ReadyFrame | None:
        """Store ``item``; returns the frame it replaced (never shown), or None."""
        with self._lock:
            old, self._item = self._item, item
        return old

    def take(self) -> ReadyFrame | None:
        with self._lock:
            item, self._item = self._item, None
        return item


class Decoding(Protocol):
    """What ``DecodeWorker`` needs of a decoder (``wavry.media.decode.Decoder``)."""

    errors: int

    def decode(self, data: bytes) -> DecodedFrame | None: ...

    def describe(self) -> dict[str, str]: ...


class DecodeWorker:
    """The decode thread. ``prepare`` (window: colour conversion) runs on it for the newest
    frame; ``on_ready`` is called (from the decode thread) when the slot gets a frame while it
    was empty; ``on_broken(frame_id)`` when a frame could not be decoded and the decoder waits
    for a keyframe; ``on_decoded(job, decoded)`` after every decoded frame (recording)."""

    def __init__(
        self,
        decoder: Decoding,
        *,
        prepare: Callable[[Any], Any] | None,
        on_ready: Callable[[], None],
        on_broken: Callable[[int], None],
        on_decoded: Callable[[DecodeJob, DecodedFrame], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_queue: int = MAX_QUEUE,
        max_backlog_s: float = MAX_BACKLOG_S,
    ) -> None:
        self.decoder = decoder
        self._prepare = prepare
        self._on_ready = on_ready
        self._on_broken = on_broken
        self._on_decoded = on_decoded
        self._clock = clock
        self.max_queue = max_queue
        self.max_backlog_s = max_backlog_s
        self.slot = LatestFrame()
        self._queue: deque[DecodeJob] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._broken = False  # waiting for a keyframe
        self.last_decoded: DecodedFrame | None = None
        # (at, seconds) per frame: decoding plus, for the newest, preparing it for the window
        self.decode_seconds: deque[tuple[float, float]] = deque(maxlen=240)
        # counters (each frame lands in exactly one of: shown later, or one of these)
        self.decoded = 0
        self.superseded = 0  # prepared, replaced in the slot by a newer one before shown
        self.not_prepared = 0  # decoded while newer units waited: never converted
        self.flushed = 0  # dropped from the queue: decoding was too far behind
        self.skipped = 0  # not decodable until the next keyframe
        self.errors = 0
        self._prepare_failed = False
        self._thread = threading.Thread(target=self._run, name="wavry-decode", daemon=True)
        self._thread.start()

    def set_presentation(
        self, prepare: Callable[[Any], Any] | None, on_ready: Callable[[], None]
    ) -> None:
        """Change how decoded frames are prepared and announced (the window arrived)."""
        self._prepare, self._on_ready = prepare, on_ready

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def submit(self, job: DecodeJob) -> bool:
        """Queue one access unit (event loop thread, never blocks). False when the queue was
        too long and has been dropped: the decoder now waits for a keyframe."""
        with self._cond:
            q = self._queue
            if not job.frame.keyframe and self._too_far_behind(len(q)):
                key = max((i for i, j in enumerate(q) if j.frame.keyframe), default=None)
                if key:  # keep the chain from the newest waiting keyframe on
                    for _ in range(key):
                        q.popleft()
                    self.flushed += key
                if not key or self._too_far_behind(len(q)):
                    self.flushed += len(q) + 1
                    q.clear()
                    self._broken = True
                    return False
            if job.frame.keyframe:  # everything before a keyframe is moot
                self.flushed += len(self._queue)
                self._queue.clear()
            self._queue.append(job)
            self._cond.notify()
        return True

    def _too_far_behind(self, waiting: int) -> bool:
        """Whether ``waiting`` units would take longer than ``max_backlog_s`` to decode."""
        if waiting >= self.max_queue:
            return True
        recent = list(self.decode_seconds)[-30:]
        per_unit = sum(s for _, s in recent) / len(recent) if recent else FIRST_DECODE_S
        return waiting * per_unit > self.max_backlog_s

    def take(self) -> ReadyFrame | None:
        """The newest ready frame, if any (window thread)."""
        return self.slot.take()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._queue.popleft()
                if job.frame.keyframe:
                    self._broken = False
                elif self._broken:
                    self.skipped += 1
                    continue
            try:
                self._decode(job)
            except Exception:  # a bug must not kill the thread silently
                _log.exception("decoding frame %s failed", job.frame.frame_id)

    def _decode(self, job: DecodeJob) -> None:
        errors = self.decoder.errors
        t0 = self._clock()
        decoded = self.decoder.decode(job.frame.data)
        t1 = self._clock()
        if decoded is None:
            self.decode_seconds.append((t1, t1 - t0))
            if self.decoder.errors != errors:
                self.errors += 1
                with self._cond:
                    self._broken = True
                self._on_broken(job.frame.frame_id)
            return
        self.decoded += 1
        self.last_decoded = decoded
        if self._on_decoded is not None:
            self._on_decoded(job, decoded)
        with self._cond:
            newest = not self._queue
        if not newest:
            self.not_prepared += 1
            self.decode_seconds.append((t1, t1 - t0))
            return
        prepared = None
        if self._prepare is not None:
            try:
                prepared = self._prepare(decoded.frame)
            except Exception as exc:
                if not self._prepare_failed:
                    self._prepare_failed = True
                    _log.warning("cannot prepare pictures for the window: %s", exc)
                return
        t2 = self._clock()
        self.decode_seconds.append((t2, t2 - t0))  # the thread's whole time for this frame
        ready = ReadyFrame(job, decoded, prepared, t0, t1, t2)
        if self.slot.put(ready) is not None:
            self.superseded += 1
        else:
            self._on_ready()

    def close(self, timeout: float = 1.0) -> None:
        """Stop the thread; frames still waiting or never taken count as dropped."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self.flushed += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
        if self.slot.take() is not None:
            self.superseded += 1
