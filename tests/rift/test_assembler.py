"""FrameAssembler on a fake clock: ordering, deadlines, reference invalidation (docs/spec/RIFT.md
§6)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift import rift_pb2
from wavry.rift.assembler import (
    AssembledFrame,
    AssemblerOutput,
    ChainState,
    FrameAssembler,
    ReferenceInvalidationNeeded,
)

DEADLINE = 0.05


def make_chunks(
    frame_id: int, count: int = 3, *, keyframe: bool = False
) -> list[rift_pb2.VideoChunk]:
    return [
        rift_pb2.VideoChunk(
            frame_id=frame_id,
            chunk_index=i,
            chunk_count=count,
            timestamp_us=1_000_000 + frame_id,
            keyframe=keyframe,
            payload=f"f{frame_id}c{i}|".encode(),
            capture_us=3,
            encode_us=4,
        )
        for i in range(count)
    ]


def frame_bytes(frame_id: int, count: int = 3) -> bytes:
    return b"".join(f"f{frame_id}c{i}|".encode() for i in range(count))


def frames_of(outputs: list[AssemblerOutput]) -> list[int]:
    return [o.frame_id for o in outputs if isinstance(o, AssembledFrame)]


def rfis_of(outputs: list[AssemblerOutput]) -> list[int]:
    return [o.last_valid_frame_id for o in outputs if isinstance(o, ReferenceInvalidationNeeded)]


def push_all(
    assembler: FrameAssembler, chunks: list[rift_pb2.VideoChunk], now: float
) -> list[AssemblerOutput]:
    out: list[AssemblerOutput] = []
    for chunk in chunks:
        out += assembler.push(chunk, now)
    return out


def state_of(assembler: FrameAssembler) -> ChainState:
    return assembler.state


def started(now: float = 0.0) -> FrameAssembler:
    assembler = FrameAssembler(completion_deadline=DEADLINE)
    assert frames_of(push_all(assembler, make_chunks(1, keyframe=True), now)) == [1]
    return assembler


def test_in_order_frames_are_emitted_with_metadata() -> None:
    assembler = FrameAssembler(completion_deadline=DEADLINE)
    chunks = make_chunks(1, keyframe=True)
    assert assembler.push(chunks[2], 0.000) == []
    assert assembler.push(chunks[0], 0.001) == []
    out = assembler.push(chunks[1], 0.002)
    assert len(out) == 1 and isinstance(out[0], AssembledFrame)
    frame = out[0]
    assert frame.data == frame_bytes(1)
    assert (frame.frame_id, frame.keyframe, frame.timestamp_us) == (1, True, 1_000_001)
    assert (frame.capture_us, frame.encode_us, frame.chunk_count) == (3, 4, 3)
    assert (frame.first_chunk_at, frame.last_chunk_at) == (0.000, 0.002)
    assert frames_of(push_all(assembler, make_chunks(2), 0.016)) == [2]
    assert state_of(assembler) is ChainState.DECODABLE
    assert assembler.stats.frames_completed == 2


def test_invalid_chunks_are_ignored() -> None:
    assembler = started()
    bad = [
        rift_pb2.VideoChunk(frame_id=2, chunk_index=0, chunk_count=0),
        rift_pb2.VideoChunk(frame_id=2, chunk_index=0, chunk_count=2**32 - 1),
        rift_pb2.VideoChunk(frame_id=2, chunk_index=3, chunk_count=3),
    ]
    for chunk in bad:
        assert assembler.push(chunk, 0.01) == []
    assert assembler.stats.chunks_invalid == 3
    good = make_chunks(2)
    assembler.push(good[0], 0.01)
    inconsistent = rift_pb2.VideoChunk()
    inconsistent.CopyFrom(good[1])
    inconsistent.chunk_count = 4
    assert assembler.push(inconsistent, 0.01) == []
    assert assembler.stats.chunks_invalid == 4
    assert assembler.push(good[0], 0.01) == []
    assert assembler.stats.chunks_duplicate == 1
    assert frames_of(push_all(assembler, good[1:], 0.012)) == [2]


def test_successor_waits_for_repaired_predecessor() -> None:
    assembler = started()
    frame2, frame3 = make_chunks(2), make_chunks(3)
    push_all(assembler, frame2[:2], 0.016)  # chunk 2 lost, NACKed
    assert push_all(assembler, frame3, 0.033) == []  # held: 2 not complete yet
    out = assembler.push(frame2[2], 0.045)  # retransmission arrives within the deadline
    assert frames_of(out) == [2, 3]
    assert assembler.stats.frames_dropped_late == 0


def test_lost_frame_triggers_one_rfi_then_waits_for_keyframe() -> None:
    assembler = started()
    push_all(assembler, make_chunks(2)[:2], 0.016)
    push_all(assembler, make_chunks(3), 0.033)
    assert assembler.next_timer() == 0.016 + DEADLINE
    assert assembler.poll(0.06) == []
    out = assembler.poll(0.016 + DEADLINE)
    assert rfis_of(out) == [1] and frames_of(out) == []
    assert state_of(assembler) is ChainState.AWAITING_KEYFRAME
    out = push_all(assembler, make_chunks(4), 0.070)
    out += push_all(assembler, make_chunks(5), 0.085)
    out += assembler.poll(0.2)  # frames 3..5 expire: undecodable, no second RFI yet
    assert frames_of(out) == [] and rfis_of(out) == []
    out = push_all(assembler, make_chunks(6, keyframe=True), 0.21)
    out += push_all(assembler, make_chunks(7), 0.22)
    assert frames_of(out) == [6, 7] and rfis_of(out) == []
    assert state_of(assembler) is ChainState.DECODABLE
    stats = assembler.stats
    assert (stats.frames_dropped_late, stats.frames_dropped_undecodable) == (1, 3)
    assert (stats.loss_episodes, stats.reference_invalidations) == (1, 1)


def test_keyframe_arriving_while_frames_are_held_supersedes_them() -> None:
    assembler = started()
    push_all(assembler, make_chunks(2)[:1], 0.016)
    push_all(assembler, make_chunks(3), 0.033)
    out = push_all(assembler, make_chunks(4, keyframe=True), 0.040)
    assert frames_of(out) == [4]
    assert rfis_of(out) == []
    assert (assembler.stats.frames_dropped_late, assembler.stats.frames_skipped) == (1, 1)
    assert push_all(assembler, make_chunks(2)[1:], 0.041) == []  # older than emitted: ignored
    assert assembler.stats.chunks_late == 2


def test_completely_lost_frame_times_out_from_its_successor() -> None:
    assembler = started()
    push_all(assembler, make_chunks(3), 0.033)  # frame 2 never seen
    assert assembler.next_timer() == 0.033 + DEADLINE
    out = assembler.poll(0.033 + DEADLINE)
    assert rfis_of(out) == [1]
    assert assembler.stats.frames_never_seen == 1
    assert push_all(assembler, make_chunks(2), 0.09) == []  # too late now


def test_first_frame_not_a_keyframe_requests_rfi_zero() -> None:
    assembler = FrameAssembler(completion_deadline=DEADLINE)
    assert push_all(assembler, make_chunks(5), 0.0) == []
    out = assembler.poll(DEADLINE)
    assert rfis_of(out) == [0]
    assert assembler.stats.frames_dropped_undecodable == 1


def test_pending_keyframe_holds_later_frames() -> None:
    assembler = FrameAssembler(completion_deadline=DEADLINE)
    key = make_chunks(1, count=4, keyframe=True)
    push_all(assembler, key[:3], 0.0)
    push_all(assembler, make_chunks(2), 0.016)  # complete, waits for keyframe 1
    assert frames_of(assembler.push(key[3], 0.02)) == [1, 2]


def test_rfi_is_repeated_when_no_keyframe_comes() -> None:
    assembler = FrameAssembler(completion_deadline=DEADLINE, rfi_retry_interval=0.2)
    started_out = push_all(assembler, make_chunks(1, keyframe=True), 0.0)
    assert frames_of(started_out) == [1]
    push_all(assembler, make_chunks(3), 0.01)
    rfis = rfis_of(assembler.poll(0.01 + DEADLINE))
    t = 0.1
    while t < 0.5:
        rfis += rfis_of(push_all(assembler, make_chunks(int(t * 100)), t))
        rfis += rfis_of(assembler.poll(t))
        t += 0.02
    assert rfis == [1, 1, 1]  # at 0.06, then every 0.2 s while frames keep being dropped


def test_memory_is_bounded_under_garbage() -> None:
    assembler = FrameAssembler(completion_deadline=10.0, max_pending_frames=16)
    for frame_id in range(1, 2000):
        assembler.push(rift_pb2.VideoChunk(frame_id=frame_id, chunk_count=5, payload=b"x"), 0.0)
    assert assembler.pending_frames <= 16
    assert len(assembler._dead) <= 64


def test_oversized_frame_is_dropped() -> None:
    assembler = FrameAssembler(completion_deadline=DEADLINE, max_frame_bytes=10)
    chunk = rift_pb2.VideoChunk(frame_id=1, chunk_count=2, keyframe=True, payload=bytes(11))
    assert rfis_of(assembler.push(chunk, 0.0)) == [0]  # the keyframe is gone: ask again
    assert assembler.stats.frames_too_large == 1
    assert assembler.pending_frames == 0


@settings(max_examples=150, deadline=None)
@given(
    frames=st.integers(5, 40),
    loss=st.floats(0.0, 0.2),
    keyframe_every=st.integers(3, 15),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_loss_and_reordering_invariants(
    frames: int, loss: float, keyframe_every: int, seed: int
) -> None:
    rng = random.Random(seed)
    assembler = FrameAssembler(completion_deadline=DEADLINE, max_pending_frames=8)
    arrivals: list[tuple[float, float, rift_pb2.VideoChunk]] = []
    counts: dict[int, int] = {}
    for frame_id in range(1, frames + 1):
        counts[frame_id] = rng.randint(1, 6)
        keyframe = frame_id % keyframe_every == 1
        for chunk in make_chunks(frame_id, counts[frame_id], keyframe=keyframe):
            if rng.random() < loss:
                continue
            jitter = rng.random() * 0.03 if rng.random() < 0.2 else 0.0
            arrivals.append((frame_id * 0.016 + jitter, rng.random(), chunk))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    outputs: list[AssemblerOutput] = []
    for now, _, chunk in arrivals:
        timer = assembler.next_timer()
        if timer is not None and timer <= now:
            outputs += assembler.poll(timer)
            later = assembler.next_timer()
            assert later is None or later > timer  # poll makes progress: no busy loop
        outputs += assembler.push(chunk, now)
    outputs += assembler.poll(100.0)
    assert assembler.pending_frames == 0

    emitted = [o for o in outputs if isinstance(o, AssembledFrame)]
    ids = [f.frame_id for f in emitted]
    assert ids == sorted(set(ids))  # never an older frame after a newer one
    for previous, frame in zip([None, *emitted], emitted, strict=False):
        assert frame.data == frame_bytes(frame.frame_id, counts[frame.frame_id])
        if not frame.keyframe:
            assert previous is not None and previous.frame_id == frame.frame_id - 1
    stats = assembler.stats
    assert stats.frames_completed == len(emitted)
    assert stats.reference_invalidations == len(rfis_of(outputs))
    if loss == 0.0:
        # Jitter (< 30 ms) stays within the deadline: a frame is only ever skipped because a
        # newer keyframe completed first, and the chain never breaks.
        assert (stats.loss_episodes, stats.reference_invalidations) == (0, 0)
        keyframes = [f.frame_id for f in emitted if f.keyframe]
        for missing in set(range(1, frames + 1)) - set(ids):
            assert any(k > missing for k in keyframes)


def test_a_frame_still_arriving_past_the_deadline_is_not_given_up() -> None:
    # a keyframe paced out at a bottleneck's rate: one chunk every 20 ms for 200 ms
    a = FrameAssembler(completion_deadline=DEADLINE, progress_grace=0.03, max_frame_time=1.0)
    chunks = make_chunks(1, 11, keyframe=True)
    out: list[AssemblerOutput] = []
    for i, chunk in enumerate(chunks):
        now = i * 0.02
        out += a.poll(now)
        out += a.push(chunk, now)
    assert frames_of(out) == [1]
    assert rfis_of(out) == []


def test_a_stalled_frame_is_given_up_after_the_grace() -> None:
    a = FrameAssembler(completion_deadline=DEADLINE, progress_grace=0.03, max_frame_time=1.0)
    chunks = make_chunks(1, 4, keyframe=True)
    out = push_all(a, chunks[:2], 0.0)
    out += a.push(chunks[2], 0.04)  # still progressing at 40 ms (past the 50 ms? not yet)
    out += a.poll(0.069)
    assert a.pending_frames == 1  # last chunk 40 ms ago + 30 ms grace = 70 ms
    out += a.poll(0.071)
    assert a.pending_frames == 0 and frames_of(out) == []


def test_a_trickling_frame_is_bounded_by_max_frame_time() -> None:
    a = FrameAssembler(completion_deadline=DEADLINE, progress_grace=0.03, max_frame_time=0.2)
    chunks = make_chunks(1, 60, keyframe=True)
    for i, chunk in enumerate(chunks[:-1]):
        a.poll(i * 0.02)
        a.push(chunk, i * 0.02)
    assert a.pending_frames == 0  # given up at 200 ms although chunks kept coming
