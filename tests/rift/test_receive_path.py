"""The client's per-datagram shortcut: a bare `media { video { … } }` plaintext is parsed as
its `VideoChunk` alone (receiver.video_chunk_start), which must give exactly what protobuf's
parse of the whole message gives, and must never take anything else."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.rift import rift_pb2
from wavry.rift.receiver import video_chunk_start


def _video(payload_len: int, **fields: int) -> rift_pb2.Message:
    chunk = rift_pb2.VideoChunk(payload=os.urandom(payload_len), **fields)  # type: ignore[arg-type]
    return rift_pb2.Message(media=rift_pb2.MediaMessage(video=chunk))


@pytest.mark.parametrize(
    "payload_len", [*range(0, 140), *range(16230, 16400, 3), 1200, 1350, 70000]
)
def test_bare_video_chunk_parses_as_the_whole_message_does(payload_len: int) -> None:
    # lengths around every varint width change of both wrappers, and a 3-byte one
    msg = _video(payload_len, frame_id=7, chunk_index=3, chunk_count=9, timestamp_us=123456789)
    plaintext = msg.SerializeToString()
    start = video_chunk_start(plaintext)
    assert start > 0
    assert rift_pb2.VideoChunk.FromString(plaintext[start:]) == msg.media.video


@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.binary(max_size=1500),
)
def test_any_video_chunk_round_trips(
    frame_id: int, index: int, count: int, keyframe: bool, payload: bytes
) -> None:
    chunk = rift_pb2.VideoChunk(
        frame_id=frame_id, chunk_index=index, chunk_count=count, keyframe=keyframe, payload=payload
    )
    plaintext = rift_pb2.Message(media=rift_pb2.MediaMessage(video=chunk)).SerializeToString()
    start = video_chunk_start(plaintext)
    assert start > 0 and rift_pb2.VideoChunk.FromString(plaintext[start:]) == chunk


def test_other_messages_take_the_whole_parse() -> None:
    fec = rift_pb2.Message(
        media=rift_pb2.MediaMessage(fec=rift_pb2.FecPacket(payload=os.urandom(1100)))
    )
    audio = rift_pb2.Message(
        media=rift_pb2.MediaMessage(audio=rift_pb2.AudioPacket(payload=os.urandom(200)))
    )
    ping = rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=5)))
    for msg in (fec, audio, ping, rift_pb2.Message()):
        assert video_chunk_start(msg.SerializeToString()) == 0
    for junk in (b"", b"\x1a", b"\x1a\x01", b"\x1a\x02\x0a", b"\x1a\x03\x0a\x01"):
        assert video_chunk_start(junk) == 0


def test_merged_or_oddly_encoded_messages_are_not_taken() -> None:
    """Protobuf merges a repeated `media` field and accepts longer varints than it writes: the
    chunk-only parse would read such bytes differently (or not at all), so they must answer 0."""
    first = _video(50, frame_id=1, chunk_count=4).SerializeToString()
    second = _video(60, chunk_index=2).SerializeToString()
    merged = first + second
    assert video_chunk_start(merged) == 0
    whole = rift_pb2.Message.FromString(merged).media.video
    assert whole.frame_id == 1 and whole.chunk_index == 2  # merged: why the shortcut refuses
    # media length 6 written as a two-byte varint (0x86 0x00): valid protobuf, not the prefix
    plaintext = _video(0, frame_id=5).SerializeToString()
    assert plaintext[:2] == b"\x1a\x04"
    padded = b"\x1a\x84\x00" + plaintext[2:]
    assert rift_pb2.Message.FromString(padded) == rift_pb2.Message.FromString(plaintext)
    assert video_chunk_start(padded) == 0
    # a second video field inside the media wrapper (merged by protobuf)
    assert (
        video_chunk_start(plaintext[:1] + bytes([plaintext[1] + 2]) + plaintext[2:] + b"\x0a\x00")
        == 0
    )
