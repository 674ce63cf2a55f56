"""Frame and file chunking: every chunk datagram fits, budgets are tight (docs/spec/RIFT.md §1,
§6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift import rift_pb2
from wavry.rift.chunking import (
    ChunkingError,
    VideoFrameInfo,
    fec_message_size,
    file_chunk_size,
    max_protectable_shard_len,
    media_message_limit,
    plan_file_chunks,
    split_file_payload,
    split_video_frame,
    varint_size,
    video_chunk_messages,
    video_chunk_payload_budget,
)
from wavry.rift.fec import FecEncoder

U32 = 2**32 - 1
U64 = 2**64 - 1
OVERHEAD = 18 + 16  # transport header + AEAD tag


def _video_datagram_size(chunk: rift_pb2.VideoChunk) -> int:
    return OVERHEAD + rift_pb2.Message(media=rift_pb2.MediaMessage(video=chunk)).ByteSize()


def _file_datagram_size(chunk: rift_pb2.FileChunk) -> int:
    return OVERHEAD + rift_pb2.Message(media=rift_pb2.MediaMessage(file_chunk=chunk)).ByteSize()


def test_varint_size_matches_protobuf() -> None:
    for value in [0, 1, 127, 128, 16383, 16384, 2**32 - 1, 2**63, U64]:
        encoded = rift_pb2.Ping(timestamp_us=value).SerializeToString()
        assert varint_size(value) == (len(encoded) - 1 if value else 1)


info_strategy = st.builds(
    VideoFrameInfo,
    frame_id=st.sampled_from([0, 1, 127, 128, 2**32, U64]) | st.integers(0, U64),
    timestamp_us=st.sampled_from([0, 1_700_000_000_000_000, U64]) | st.integers(0, U64),
    keyframe=st.booleans(),
    capture_us=st.sampled_from([0, 5000, U32]) | st.integers(0, U32),
    encode_us=st.sampled_from([0, 5000, U32]) | st.integers(0, U32),
)


@settings(max_examples=120, deadline=None)
@given(
    info=info_strategy,
    frame_len=st.sampled_from([0, 1, 1000, 1300, 1400, 5000, 200_000]) | st.integers(0, 60_000),
    max_datagram_size=st.sampled_from([1200, 1400, 1500]) | st.integers(1200, 9000),
    reserve=st.sampled_from([0, 1, 16, 32, 64]),
)
def test_every_video_chunk_fits_and_frame_reassembles(
    info: VideoFrameInfo, frame_len: int, max_datagram_size: int, reserve: int
) -> None:
    frame = bytes(i % 251 for i in range(frame_len))
    chunks = split_video_frame(
        frame, info, max_datagram_size=max_datagram_size, fec_reserve_shards=reserve
    )
    assert b"".join(c.payload for c in chunks) == frame
    shard_limit = max_protectable_shard_len(max_datagram_size, reserve) if reserve else None
    for index, chunk in enumerate(chunks):
        assert chunk.chunk_index == index
        assert chunk.chunk_count == len(chunks)
        assert (chunk.frame_id, chunk.timestamp_us, chunk.keyframe) == (
            info.frame_id,
            info.timestamp_us,
            info.keyframe,
        )
        assert (chunk.capture_us, chunk.encode_us) == (info.capture_us, info.encode_us)
        size = _video_datagram_size(chunk)
        assert size <= max_datagram_size
        if shard_limit is not None:
            assert size - 18 <= shard_limit
    # Tight: one more payload byte in the worst-placed chunk would not fit.
    budget = video_chunk_payload_budget(
        info, len(chunks), max_datagram_size=max_datagram_size, fec_reserve_shards=reserve
    )
    fat = rift_pb2.VideoChunk()
    fat.CopyFrom(chunks[-1])
    fat.payload = bytes(budget + 1)
    limit = media_message_limit(max_datagram_size, reserve) + OVERHEAD
    assert _video_datagram_size(fat) > limit
    fat.payload = bytes(budget)
    assert _video_datagram_size(fat) <= limit


@given(
    info=info_strategy,
    frame_len=st.sampled_from([0, 1, 127, 128, 1400, 16_384, 200_000]) | st.integers(0, 60_000),
    max_datagram_size=st.sampled_from([1200, 1400]) | st.integers(1200, 65_507),
    reserve=st.sampled_from([0, 1, 32]),
)
def test_serialized_chunks_are_the_protobuf_bytes(
    info: VideoFrameInfo, frame_len: int, max_datagram_size: int, reserve: int
) -> None:
    """The hand-written serialization the sender uses is protobuf's, byte for byte."""
    frame = bytes(i % 251 for i in range(frame_len))
    kw = {"max_datagram_size": max_datagram_size, "fec_reserve_shards": reserve}
    expected = [
        rift_pb2.Message(media=rift_pb2.MediaMessage(video=c)).SerializeToString()
        for c in split_video_frame(frame, info, **kw)
    ]
    assert video_chunk_messages(frame, info, **kw) == expected


@settings(max_examples=150, deadline=None)
@given(
    info=info_strategy,
    frame_len=st.sampled_from([1300, 5000, 200_000, 400_000]) | st.integers(1, 400_000),
    max_datagram_size=st.sampled_from([1200, 1400, 1500]) | st.integers(1200, 9000),
    reserve=st.sampled_from([0, 1, 32]),
)
def test_a_frames_chunks_make_datagrams_of_one_size_but_the_last(
    info: VideoFrameInfo, frame_len: int, max_datagram_size: int, reserve: int
) -> None:
    """What one GSO send takes whole (only its last segment may be shorter): chunk 0 has no
    index field and chunks past 127 a longer one, so the payloads differ instead."""
    frame = bytes(i % 251 for i in range(frame_len))
    kw = {"max_datagram_size": max_datagram_size, "fec_reserve_shards": reserve}
    sizes = [len(m) for m in video_chunk_messages(frame, info, **kw)]
    assert len(set(sizes[:-1])) <= 1, sizes
    assert sizes[-1] <= sizes[0]


def test_default_budget_is_close_to_the_limit() -> None:
    info = VideoFrameInfo(frame_id=1234, timestamp_us=1_700_000_000_000_000, keyframe=False)
    chunks = split_video_frame(bytes(100_000), info, fec_reserve_shards=0)
    assert max(_video_datagram_size(c) for c in chunks) == 1400
    with_fec = split_video_frame(bytes(100_000), info)
    assert 1250 <= max(_video_datagram_size(c) for c in with_fec) < 1400


def test_fec_reserve_lets_full_groups_of_chunks_keep_their_size() -> None:
    info = VideoFrameInfo(frame_id=U64, timestamp_us=U64, keyframe=True, capture_us=U32)
    chunks = split_video_frame(bytes(300_000), info)
    encoder = FecEncoder(32, 4, first_group_id=U64 - 10)
    parities = []
    for i, chunk in enumerate(chunks):
        size = _video_datagram_size(chunk)
        parities += encoder.add(2**63 - 1000 + i, bytes(size - 18), now=0.0)
    parities += encoder.flush()
    assert encoder.stats.groups_closed_early <= 1  # only the flushed tail
    for fec in parities:
        assert OVERHEAD + rift_pb2.Message(media=rift_pb2.MediaMessage(fec=fec)).ByteSize() <= 1400


@settings(max_examples=200, deadline=None)
@given(
    group_id=st.integers(0, U64),
    first=st.integers(0, 2**63 - 1),
    lengths=st.lists(st.integers(0, 70_000), min_size=1, max_size=64),
    data=st.data(),
)
def test_fec_message_size_is_exact(
    group_id: int, first: int, lengths: list[int], data: st.DataObject
) -> None:
    parity_count = data.draw(st.integers(1, len(lengths)))
    fec = rift_pb2.FecPacket(
        group_id=group_id,
        first_packet_id=first,
        shard_count=len(lengths),
        parity_index=parity_count - 1,
        parity_count=parity_count,
        payload=bytes(max(lengths)),
        shard_lengths=lengths,
    )
    expected = rift_pb2.Message(media=rift_pb2.MediaMessage(fec=fec)).ByteSize()
    assert expected == fec_message_size(
        group_id=group_id,
        first_packet_id=first,
        shard_lengths_varint_bytes=sum(varint_size(n) for n in lengths),
        shard_count=len(lengths),
        parity_count=parity_count,
        parity_len=max(lengths),
    )


def test_invalid_parameters_raise() -> None:
    info = VideoFrameInfo(frame_id=1, timestamp_us=1, keyframe=False)
    with pytest.raises(ChunkingError):
        split_video_frame(b"x", info, max_datagram_size=1199)
    with pytest.raises(ChunkingError):
        split_video_frame(b"x", VideoFrameInfo(frame_id=-1, timestamp_us=0, keyframe=False))
    with pytest.raises(ChunkingError):
        split_video_frame(
            b"x", VideoFrameInfo(frame_id=1, timestamp_us=0, keyframe=False, capture_us=2**32)
        )
    with pytest.raises(ChunkingError, match="chunks"):
        split_video_frame(bytes(8192 * 1400), info)


def test_empty_frame_is_one_empty_chunk() -> None:
    chunks = split_video_frame(b"", VideoFrameInfo(frame_id=3, timestamp_us=9, keyframe=True))
    assert len(chunks) == 1
    assert (chunks[0].chunk_count, chunks[0].payload) == (1, b"")


@settings(max_examples=60, deadline=None)
@given(
    file_id=st.sampled_from([0, 1, U64]) | st.integers(0, U64),
    size=st.integers(0, 20_000),
    max_datagram_size=st.integers(1200, 2000),
    reserve=st.sampled_from([0, 32]),
)
def test_file_chunks_fit_and_follow_the_plan(
    file_id: int, size: int, max_datagram_size: int, reserve: int
) -> None:
    data = bytes(i % 253 for i in range(size))
    chunks = split_file_payload(
        data, file_id, max_datagram_size=max_datagram_size, fec_reserve_shards=reserve
    )
    plan = plan_file_chunks(
        file_id, size, max_datagram_size=max_datagram_size, fec_reserve_shards=reserve
    )
    assert len(chunks) == plan.total_chunks
    assert b"".join(c.payload for c in chunks) == data
    for chunk in chunks[:-1]:
        assert len(chunk.payload) == plan.chunk_size
    for chunk in chunks:
        assert _file_datagram_size(chunk) <= max_datagram_size
    worst = rift_pb2.FileChunk(file_id=file_id, chunk_index=U32, payload=bytes(plan.chunk_size))
    assert _file_datagram_size(worst) <= max_datagram_size
    worst.payload = bytes(plan.chunk_size + 1)
    assert _file_datagram_size(worst) > OVERHEAD + media_message_limit(max_datagram_size, reserve)


def test_file_plan_ranges() -> None:
    size = file_chunk_size(7)
    plan = plan_file_chunks(7, 2 * size + 5)
    assert plan.total_chunks == 3
    assert plan.chunk_range(2, 2 * size + 5) == (2 * size, 2 * size + 5)
    assert plan_file_chunks(7, 0).total_chunks == 0
    with pytest.raises(ChunkingError):
        plan.chunk_range(3, 2 * size + 5)
