"""Reassembly of video frames from ``VideoChunk``s (docs/spec/RIFT.md §6). Sans-I/O: time is
``now``.

Policy (see docs/rift-media.md):

* a frame is emitted only when all of its chunks are present, in increasing ``frame_id`` order;
  a non-keyframe only right after its predecessor (``frame_id - 1``) was emitted, a keyframe at
  any time (older pending frames are then dropped);
* a frame that is not complete ``completion_deadline`` seconds after its first chunk arrived is
  given up — unless its chunks are still arriving (one came within ``progress_grace``): a
  keyframe paced out at a bottleneck's rate may take longer than the deadline, and giving it up
  would only ask for another one; ``max_frame_time`` bounds that; a frame id never seen at
  all is given up at the deadline of the first later frame;
* giving up the next frame of a decodable chain breaks the chain: the assembler asks once for a
  ``ReferenceInvalidation{last_valid_frame_id}`` (again after ``rfi_retry_interval`` if frames
  keep being dropped and no keyframe is in sight) and drops non-keyframes until a keyframe is
  emitted (``frames_dropped_undecodable``).
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from wavry.rift import rift_pb2
from wavry.rift.chunking import MAX_CHUNKS_PER_FRAME


class ChainState(enum.Enum):
    """Whether the decoder can use the next non-keyframe."""

    DECODABLE = "decodable"
    AWAITING_KEYFRAME = "awaiting_keyframe"


@dataclass(frozen=True)
class AssembledFrame:
    frame_id: int
    data: bytes
    keyframe: bool
    timestamp_us: int
    capture_us: int
    encode_us: int
    chunk_count: int
    first_chunk_at: float
    last_chunk_at: float


@dataclass(frozen=True)
class ReferenceInvalidationNeeded:
    """Send ``ReferenceInvalidation{last_valid_frame_id}`` (0 when nothing was decodable yet)."""

    last_valid_frame_id: int

    def to_message(self) -> rift_pb2.ReferenceInvalidation:
        return rift_pb2.ReferenceInvalidation(last_valid_frame_id=self.last_valid_frame_id)


AssemblerOutput = AssembledFrame | ReferenceInvalidationNeeded


@dataclass
class AssemblerStats:
    frames_completed: int = 0
    frames_dropped_late: int = 0
    frames_dropped_undecodable: int = 0
    frames_skipped: int = 0
    frames_never_seen: int = 0
    frames_too_large: int = 0
    frames_evicted: int = 0
    chunks_invalid: int = 0
    chunks_duplicate: int = 0
    chunks_late: int = 0
    loss_episodes: int = 0
    reference_invalidations: int = 0


@dataclass
class _PendingFrame:
    frame_id: int
    chunk_count: int
    keyframe: bool
    timestamp_us: int
    capture_us: int
    encode_us: int
    first_chunk_at: float
    last_chunk_at: float
    chunks: list[bytes | None] = field(default_factory=list)
    received: int = 0
    size: int = 0

    @property
    def complete(self) -> bool:
        return self.received == self.chunk_count

    def matches(self, chunk: rift_pb2.VideoChunk) -> bool:
        return (chunk.chunk_count, chunk.keyframe, chunk.timestamp_us) == (
            self.chunk_count,
            self.keyframe,
            self.timestamp_us,
        )

    def to_output(self) -> AssembledFrame:
        return AssembledFrame(
            frame_id=self.frame_id,
            data=b"".join(self.chunks)  # type: ignore[arg-type]
            if self.received == self.chunk_count  # complete: no None left
            else b"".join(c for c in self.chunks if c is not None),
            keyframe=self.keyframe,
            timestamp_us=self.timestamp_us,
            capture_us=self.capture_us,
            encode_us=self.encode_us,
            chunk_count=self.chunk_count,
            first_chunk_at=self.first_chunk_at,
            last_chunk_at=self.last_chunk_at,
        )


class FrameAssembler:
    def __init__(
        self,
        *,
        completion_deadline: float = 0.08,
        progress_grace: float = 0.04,
        max_frame_time: float = 1.0,
        rfi_retry_interval: float = 0.25,
        max_pending_frames: int = 64,
        max_frame_bytes: int = 32 * 1024 * 1024,
        max_chunks_per_frame: int = MAX_CHUNKS_PER_FRAME,
    ) -> None:
        self.completion_deadline = completion_deadline
        self.progress_grace = progress_grace
        self.max_frame_time = max_frame_time
        self.rfi_retry_interval = rfi_retry_interval
        self._max_pending = max_pending_frames
        self._max_frame_bytes = max_frame_bytes
        self._max_chunks = max_chunks_per_frame
        self._pending: dict[int, _PendingFrame] = {}
        self._dead: OrderedDict[int, None] = OrderedDict()  # given-up ids above last emitted
        self._last_emitted: int | None = None
        self._state = ChainState.AWAITING_KEYFRAME
        self._last_rfi_at: float | None = None
        self._drops_since_rfi = 0
        self._out: list[AssemblerOutput] = []
        self._due = -math.inf  # next_timer() after the last decision (push's fast path)
        self.stats = AssemblerStats()

    @property
    def state(self) -> ChainState:
        return self._state

    @property
    def last_emitted_frame_id(self) -> int | None:
        return self._last_emitted

    @property
    def pending_frames(self) -> int:
        return len(self._pending)

    def push(self, chunk: rift_pb2.VideoChunk, now: float) -> list[AssemblerOutput]:
        """Add one chunk; returns completed frames and reference-invalidation requests."""
        frame = self._accept(chunk, now)
        if (
            frame is not None
            and frame.received < frame.chunk_count
            and now < self._due
            and not self._out
            and self._state is ChainState.DECODABLE
        ):
            # the common case: one more chunk of an incomplete frame, no deadline reached (a
            # chunk only moves deadlines later): no decision can change
            return []
        self._drain(now)
        out, self._out = self._out, []
        return out

    def poll(self, now: float) -> list[AssemblerOutput]:
        """Apply deadlines; call at :meth:`next_timer`."""
        self._drain(now)
        out, self._out = self._out, []
        return out

    def next_timer(self) -> float | None:
        """When the next deadline-driven decision is due (None: nothing pending)."""
        if self._state is ChainState.DECODABLE:
            times = [self._next_frame_deadline()]
        else:
            times = [self._deadline(f) for f in self._pending.values()]
        times.append(self._rfi_retry_due_at())
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def _accept(self, chunk: rift_pb2.VideoChunk, now: float) -> _PendingFrame | None:
        """Store one chunk; returns its frame when stored (None: dropped, or state changed)."""
        frame_id = chunk.frame_id
        if self._last_emitted is not None and frame_id <= self._last_emitted:
            self.stats.chunks_late += 1
            return None
        if frame_id in self._dead:
            self.stats.chunks_late += 1
            return None
        count = chunk.chunk_count
        index = chunk.chunk_index
        if not 1 <= count <= self._max_chunks or index >= count:
            self.stats.chunks_invalid += 1
            return None
        frame = self._pending.get(frame_id)
        evicted = False
        if frame is None:
            frame = _PendingFrame(
                frame_id=frame_id,
                chunk_count=count,
                keyframe=chunk.keyframe,
                timestamp_us=chunk.timestamp_us,
                capture_us=chunk.capture_us,
                encode_us=chunk.encode_us,
                first_chunk_at=now,
                last_chunk_at=now,
                chunks=[None] * count,
            )
            self._pending[frame_id] = frame
            if len(self._pending) > self._max_pending:
                evicted = True
                self._evict_if_full(now)
                if frame_id not in self._pending:
                    return None
        elif (
            count != frame.chunk_count
            or chunk.timestamp_us != frame.timestamp_us
            or chunk.keyframe != frame.keyframe
        ):  # `frame.matches(chunk)`, inlined: runs per chunk
            self.stats.chunks_invalid += 1
            return None
        chunks = frame.chunks
        if chunks[index] is not None:
            self.stats.chunks_duplicate += 1
            return None
        payload = chunk.payload
        chunks[index] = payload
        frame.received += 1
        frame.size += len(payload)
        frame.last_chunk_at = now
        if frame.size > self._max_frame_bytes:
            self.stats.frames_too_large += 1
            self._give_up(frame_id, now)
            return None
        return None if evicted else frame

    def _evict_if_full(self, now: float) -> None:
        while len(self._pending) > self._max_pending:
            oldest = min(self._pending)
            self.stats.frames_evicted += 1
            self._give_up(oldest, now)

    def _drain(self, now: float) -> None:
        while self._step(now):
            pass
        self._maybe_retry_rfi(now)
        due = self.next_timer()
        self._due = math.inf if due is None else due

    def _step(self, now: float) -> bool:
        """Make one decision; returns whether something changed."""
        keyframes = [f for f in self._pending.values() if f.keyframe and f.complete]
        if keyframes:
            self._emit(max(keyframes, key=lambda f: f.frame_id), now)
            return True
        if self._state is ChainState.DECODABLE:
            return self._step_decodable(now)
        return self._step_awaiting_keyframe(now)

    def _next_frame_deadline(self) -> float | None:
        """Deadline of frame ``last_emitted + 1``; an unseen frame gets the deadline of the
        earliest-arrived later frame."""
        assert self._last_emitted is not None
        frame = self._pending.get(self._last_emitted + 1)
        if frame is not None:
            return self._deadline(frame)
        if not self._pending:
            return None
        return min(f.first_chunk_at for f in self._pending.values()) + self.completion_deadline

    def _deadline(self, frame: _PendingFrame) -> float:
        base = frame.first_chunk_at + self.completion_deadline
        progressing = frame.last_chunk_at + self.progress_grace
        return min(frame.first_chunk_at + self.max_frame_time, max(base, progressing))

    def _step_decodable(self, now: float) -> bool:
        assert self._last_emitted is not None
        next_id = self._last_emitted + 1
        frame = self._pending.get(next_id)
        if frame is not None and frame.complete:
            self._emit(frame, now)
            return True
        if next_id not in self._dead:  # not already given up (evicted, too large)
            deadline = self._next_frame_deadline()
            if deadline is None or now < deadline:
                return False
            if frame is None:
                self.stats.frames_never_seen += 1
                self._mark_dead(next_id)
            else:
                self._give_up(next_id, now)
        # The next frame of the chain is lost: the decoder needs a fresh reference.
        self.stats.loss_episodes += 1
        self._state = ChainState.AWAITING_KEYFRAME
        self._request_rfi(now)
        return True

    def _step_awaiting_keyframe(self, now: float) -> bool:
        pending_keyframes = [f.frame_id for f in self._pending.values() if f.keyframe]
        newest_keyframe = max(pending_keyframes, default=None)
        for frame in sorted(self._pending.values(), key=lambda f: f.frame_id):
            too_old = newest_keyframe is not None and frame.frame_id < newest_keyframe
            expired = now >= self._deadline(frame)
            if (too_old and not frame.keyframe) or expired:
                self._give_up(frame.frame_id, now)
                return True
        return False

    def _emit(self, frame: _PendingFrame, now: float) -> None:
        if frame.keyframe:
            was_awaiting = self._state is ChainState.AWAITING_KEYFRAME
            self._state = ChainState.DECODABLE
            for older in sorted(fid for fid in self._pending if fid < frame.frame_id):
                self._discard_superseded(self._pending.pop(older), was_awaiting)
            if self._last_emitted is not None:
                gap = frame.frame_id - self._last_emitted - 1
                dead = sum(1 for fid in self._dead if fid < frame.frame_id)
                self.stats.frames_never_seen += max(0, gap - dead)
        del self._pending[frame.frame_id]
        self._last_emitted = frame.frame_id
        for fid in [fid for fid in self._dead if fid <= frame.frame_id]:
            del self._dead[fid]
        self.stats.frames_completed += 1
        self._out.append(frame.to_output())

    def _discard_superseded(self, frame: _PendingFrame, was_awaiting: bool) -> None:
        self._mark_dead(frame.frame_id)
        if was_awaiting and not frame.keyframe:
            self.stats.frames_dropped_undecodable += 1
        elif frame.complete:
            self.stats.frames_skipped += 1
        else:
            self.stats.frames_dropped_late += 1

    def _give_up(self, frame_id: int, now: float) -> None:
        frame = self._pending.pop(frame_id)
        self._mark_dead(frame_id)
        if self._state is ChainState.DECODABLE:
            self.stats.frames_dropped_late += 1
            return  # a loss episode starts when this frame's turn comes (_step_decodable)
        if frame.keyframe:
            self.stats.frames_dropped_late += 1
        else:
            self.stats.frames_dropped_undecodable += 1
        self._drops_since_rfi += 1
        if self._last_rfi_at is None and not self._keyframe_pending():
            self._request_rfi(now)

    def _mark_dead(self, frame_id: int) -> None:
        self._dead[frame_id] = None
        while len(self._dead) > 4 * self._max_pending:
            self._dead.popitem(last=False)

    def _keyframe_pending(self) -> bool:
        return any(f.keyframe for f in self._pending.values())

    def _request_rfi(self, now: float) -> None:
        self._last_rfi_at = now
        self._drops_since_rfi = 0
        self.stats.reference_invalidations += 1
        self._out.append(ReferenceInvalidationNeeded(last_valid_frame_id=self._last_emitted or 0))

    def _rfi_retry_due_at(self) -> float | None:
        if (
            self._state is ChainState.AWAITING_KEYFRAME
            and self._last_rfi_at is not None
            and self._drops_since_rfi > 0
            and not self._keyframe_pending()
        ):
            return self._last_rfi_at + self.rfi_retry_interval
        return None

    def _maybe_retry_rfi(self, now: float) -> None:
        due = self._rfi_retry_due_at()
        if due is not None and now >= due:
            self._request_rfi(now)
