"""Splitting encoded frames and files into chunks that fit one datagram (docs/spec/RIFT.md §1, §6).

A chunk datagram is ``header (18) || ciphertext(Message(media=MediaMessage(...))) || tag (16)``
and must not exceed the session's maximum datagram size. The payload budget is computed exactly
from the protobuf encoding (varint sizes of the actual field values), so no chunk can exceed the
limit whatever the field values.

Chunks also leave room for FEC: a parity ``FecPacket`` carries a payload as long as the longest
shard it protects plus its own fields (``shard_lengths`` grows with the group size), and it has to
fit in one datagram too. With ``fec_reserve_shards = n`` every chunk datagram is small enough that
a group of ``n`` such datagrams has parity datagrams within the limit (0 disables the reserve).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from wavry.rift import rift_pb2

TRANSPORT_HEADER_SIZE = 18
AEAD_TAG_SIZE = 16
MAX_PACKET_ID = 2**63 - 1
MAX_GROUP_SHARDS = 64
DEFAULT_MAX_DATAGRAM_SIZE = 1400
MIN_MAX_DATAGRAM_SIZE = 1200
MAX_DATAGRAM_SIZE_LIMIT = 65507
DEFAULT_FEC_RESERVE_SHARDS = 32
MAX_CHUNKS_PER_FRAME = 8192
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1


class ChunkingError(ValueError):
    """A frame or file cannot be split with the given parameters."""


def varint_size(value: int) -> int:
    """Bytes of the protobuf base-128 varint encoding of a non-negative ``value``."""
    # the common sizes first: the sender's FEC size check runs this several times per datagram
    if value < 0x80:
        return 1
    if value < 0x4000:
        return 2
    return (value.bit_length() + 6) // 7


def uint_field_size(value: int) -> int:
    """Size of a proto3 scalar field with a one-byte tag (0 when it holds the default)."""
    return 1 + varint_size(value) if value else 0


def _bytes_field(length: int) -> int:
    return 1 + varint_size(length) + length if length else 0


def _wrapped_media_size(inner: int) -> int:
    """Size of ``Message(media=MediaMessage(<one-byte-tag field> = inner-sized message))``."""
    media = 1 + varint_size(inner) + inner
    return 1 + varint_size(media) + media


def fec_message_size(
    *,
    group_id: int,
    first_packet_id: int,
    shard_lengths_varint_bytes: int,
    shard_count: int,
    parity_count: int,
    parity_len: int,
    scheme: int = 0,
) -> int:
    """Exact size of ``Message(media=MediaMessage(fec=FecPacket(...)))`` for the largest
    ``parity_index`` (``parity_count - 1``); ``shard_lengths_varint_bytes`` is the sum of the
    varint sizes of the shard lengths (the packed ``shard_lengths`` field body); ``scheme`` is
    the ``FecScheme`` value (0, XOR, is not on the wire)."""
    body = (
        uint_field_size(group_id)
        + uint_field_size(first_packet_id)
        + uint_field_size(shard_count)
        + uint_field_size(parity_count - 1)
        + _bytes_field(parity_len)
        + _bytes_field(shard_lengths_varint_bytes)
        + uint_field_size(parity_count)
        + uint_field_size(scheme)
    )
    return _wrapped_media_size(body)


@functools.lru_cache(maxsize=256)
def max_protectable_shard_len(max_datagram_size: int, shard_count: int) -> int:
    """Longest shard (encrypted payload) such that a group of ``shard_count`` shards of that
    length, with worst-case group id and packet ids, has parity datagrams that fit."""
    if not 1 <= shard_count <= MAX_GROUP_SHARDS:
        raise ValueError(f"shard_count must be in 1..{MAX_GROUP_SHARDS}, got {shard_count}")
    length = max_datagram_size
    while length > 0:
        size = fec_message_size(
            group_id=_U64_MAX,
            first_packet_id=MAX_PACKET_ID,
            shard_lengths_varint_bytes=shard_count * varint_size(length),
            shard_count=shard_count,
            parity_count=shard_count,
            parity_len=length,
            scheme=rift_pb2.FEC_REED_SOLOMON,  # the larger of the two schemes' parities
        )
        if TRANSPORT_HEADER_SIZE + size + AEAD_TAG_SIZE <= max_datagram_size:
            break
        length -= 1
    return length


@functools.lru_cache(maxsize=64)
def media_message_limit(max_datagram_size: int, fec_reserve_shards: int) -> int:
    """Largest serialized ``rift.Message`` that fits one chunk datagram (and, with a reserve,
    whose encrypted payload still has room for parity over ``fec_reserve_shards`` shards)."""
    if not MIN_MAX_DATAGRAM_SIZE <= max_datagram_size <= MAX_DATAGRAM_SIZE_LIMIT:
        raise ChunkingError(
            f"max datagram size must be in {MIN_MAX_DATAGRAM_SIZE}..{MAX_DATAGRAM_SIZE_LIMIT}, "
            f"got {max_datagram_size}"
        )
    limit = max_datagram_size - TRANSPORT_HEADER_SIZE - AEAD_TAG_SIZE
    if fec_reserve_shards:
        shard_limit = max_protectable_shard_len(max_datagram_size, fec_reserve_shards)
        limit = min(limit, shard_limit - AEAD_TAG_SIZE)
    return limit


@functools.lru_cache(maxsize=256)  # per frame on the send path; pure in two small ints
def _largest_payload(limit: int, fixed_fields: int) -> int:
    """Largest payload ``p`` such that a message with ``fixed_fields`` bytes of other fields
    plus a ``p``-byte bytes field, wrapped in ``MediaMessage`` and ``Message``, is ``<= limit``."""

    def size(payload_len: int) -> int:
        return _wrapped_media_size(fixed_fields + _bytes_field(payload_len))

    payload = max(0, 2 * limit - size(limit))
    while payload > 0 and size(payload) > limit:
        payload -= 1
    while size(payload + 1) <= limit:
        payload += 1
    return payload


@dataclass(frozen=True)
class VideoFrameInfo:
    """Per-frame fields repeated in every ``VideoChunk`` of the frame."""

    frame_id: int
    timestamp_us: int
    keyframe: bool
    capture_us: int = 0
    encode_us: int = 0

    def fixed_fields_size(self, max_chunk_index: int, chunk_count: int) -> int:
        """Encoded size of every ``VideoChunk`` field except ``payload``."""
        return (
            uint_field_size(self.frame_id)
            + uint_field_size(max_chunk_index)
            + uint_field_size(chunk_count)
            + uint_field_size(self.timestamp_us)
            + (2 if self.keyframe else 0)
            + uint_field_size(self.capture_us)
            + uint_field_size(self.encode_us)
        )


def video_chunk_payload_budget(
    info: VideoFrameInfo,
    chunk_count: int,
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    fec_reserve_shards: int = DEFAULT_FEC_RESERVE_SHARDS,
) -> int:
    """Largest chunk payload such that any chunk of a ``chunk_count``-chunk frame fits."""
    limit = media_message_limit(max_datagram_size, fec_reserve_shards)
    fixed = info.fixed_fields_size(max(0, chunk_count - 1), chunk_count)
    return _largest_payload(limit, fixed)


def _plan_video_frame(
    frame: bytes, info: VideoFrameInfo, max_datagram_size: int, fec_reserve_shards: int
) -> tuple[int, int]:
    """(chunk count, payload bytes per chunk) for one frame; checks the field ranges."""
    _check_uint(info.frame_id, _U64_MAX, "frame_id")
    _check_uint(info.timestamp_us, _U64_MAX, "timestamp_us")
    _check_uint(info.capture_us, _U32_MAX, "capture_us")
    _check_uint(info.encode_us, _U32_MAX, "encode_us")
    count = 1
    while True:
        budget = video_chunk_payload_budget(
            info, count, max_datagram_size=max_datagram_size, fec_reserve_shards=fec_reserve_shards
        )
        if budget <= 0:
            raise ChunkingError("no room for a chunk payload")
        needed = max(1, -(-len(frame) // budget))
        if needed > MAX_CHUNKS_PER_FRAME:
            raise ChunkingError(
                f"frame of {len(frame)} bytes needs {needed} chunks "
                f"(at most {MAX_CHUNKS_PER_FRAME})"
            )
        if needed <= count:
            return needed, budget
        count = needed


def _chunk_sizes(total: int, needed: int, budget: int) -> list[int]:
    """Payload bytes of each chunk of a ``total``-byte frame. ``budget`` fits the chunk with the
    largest index; a smaller index is a shorter field (chunk 0 has none: proto3 leaves out the
    default), and its chunk takes the bytes that frees. Every chunk but the last then makes a
    datagram of one size, and a GSO send batches a frame's chunks whole (only a batch's last
    segment may be shorter, net/gso.py): 2 bytes short, chunk 0 went out in a send of its own.
    The count can come out lower than ``needed``; the fields then only shrink."""
    top = uint_field_size(needed - 1)
    full = _bytes_field(budget)
    sizes: list[int] = []
    left = total
    for index in range(needed):
        n = budget + top - uint_field_size(index)
        while _bytes_field(n) > full + top - uint_field_size(index):
            n -= 1  # the length prefix grew a byte (a 16 kB budget)
        n = min(n, left)
        sizes.append(n)
        left -= n
        if not left:
            break
    return sizes


def split_video_frame(
    frame: bytes,
    info: VideoFrameInfo,
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    fec_reserve_shards: int = DEFAULT_FEC_RESERVE_SHARDS,
) -> list[rift_pb2.VideoChunk]:
    """Split one encoded frame into ``VideoChunk``s, each fitting one datagram.

    An empty frame gives one chunk with an empty payload.
    """
    needed, budget = _plan_video_frame(frame, info, max_datagram_size, fec_reserve_shards)
    sizes = _chunk_sizes(len(frame), needed, budget)
    view = memoryview(frame)
    out = []
    at = 0
    for index, n in enumerate(sizes):
        out.append(
            rift_pb2.VideoChunk(
                frame_id=info.frame_id,
                chunk_index=index,
                chunk_count=len(sizes),
                timestamp_us=info.timestamp_us,
                keyframe=info.keyframe,
                payload=bytes(view[at : at + n]),
                capture_us=info.capture_us,
                encode_us=info.encode_us,
            )
        )
        at += n
    return out


def _varint(value: int) -> bytes:
    """The protobuf base-128 varint encoding of a non-negative ``value``."""
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key_varint(key: int, value: int) -> bytes:
    """A varint field (one-byte key) as proto3 writes it: nothing for the default 0."""
    return bytes((key,)) + _varint(value) if value else b""


def fec_message(fec: rift_pb2.FecPacket) -> bytes:
    """``Message(media=MediaMessage(fec=fec))`` serialized, byte for byte as protobuf writes it:
    the parity's own bytes behind the two wrappers' keys and lengths. Nesting the messages
    would copy the parity into each wrapper first (one ~1.3 kB parity per few datagrams)."""
    body = fec.SerializeToString()
    n = len(body)
    inner = _varint(n)
    return b"".join((b"\x1a", _varint(1 + len(inner) + n), b"\x12", inner, body))


def video_chunk_messages(
    frame: bytes,
    info: VideoFrameInfo,
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    fec_reserve_shards: int = DEFAULT_FEC_RESERVE_SHARDS,
) -> list[bytes]:
    """The chunks of `split_video_frame`, each already serialized as
    ``Message(media=MediaMessage(video=chunk))`` (the plaintext of one datagram).

    The same bytes as protobuf's own serialization (a test holds them equal), written directly:
    the sender runs this for every frame on the latency path, and building two message objects
    per chunk and copying each payload into them cost more than the encryption.
    """
    needed, budget = _plan_video_frame(frame, info, max_datagram_size, fec_reserve_shards)
    sizes = _chunk_sizes(len(frame), needed, budget)
    # VideoChunk fields in field-number order: 1 frame_id, 2 chunk_index, 3 chunk_count,
    # 4 timestamp_us, 5 keyframe, 6 payload, 7 capture_us, 8 encode_us
    head = _key_varint(0x08, info.frame_id)
    middle = (
        _key_varint(0x18, len(sizes))
        + _key_varint(0x20, info.timestamp_us)
        + (b"\x28\x01" if info.keyframe else b"")
    )
    tail = _key_varint(0x38, info.capture_us) + _key_varint(0x40, info.encode_us)
    view = memoryview(frame)
    out = []
    at = 0
    for index, n in enumerate(sizes):
        payload = view[at : at + n]
        at += n
        chunk = b"".join(
            (
                head,
                _key_varint(0x10, index),
                middle,
                b"\x32" + _varint(len(payload)) if len(payload) else b"",
                payload,
                tail,
            )
        )
        media = b"\x0a" + _varint(len(chunk)) + chunk  # MediaMessage.video = 1
        out.append(b"\x1a" + _varint(len(media)) + media)  # Message.media = 3
    return out


@dataclass(frozen=True)
class FileChunkPlan:
    """How a file is cut: every chunk is ``chunk_size`` bytes except the last."""

    chunk_size: int
    total_chunks: int

    def chunk_range(self, chunk_index: int, file_size: int) -> tuple[int, int]:
        """Byte range ``[start, end)`` of chunk ``chunk_index``."""
        if not 0 <= chunk_index < self.total_chunks:
            raise ChunkingError(f"chunk index {chunk_index} outside 0..{self.total_chunks - 1}")
        start = chunk_index * self.chunk_size
        return start, min(file_size, start + self.chunk_size)


def file_chunk_size(
    file_id: int,
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    fec_reserve_shards: int = DEFAULT_FEC_RESERVE_SHARDS,
) -> int:
    """Largest ``FileChunk`` payload that fits one datagram for any ``chunk_index`` (u32)."""
    _check_uint(file_id, _U64_MAX, "file_id")
    limit = media_message_limit(max_datagram_size, fec_reserve_shards)
    fixed = uint_field_size(file_id) + uint_field_size(_U32_MAX)
    return _largest_payload(limit, fixed)


def plan_file_chunks(
    file_id: int,
    file_size: int,
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    fec_reserve_shards: int = DEFAULT_FEC_RESERVE_SHARDS,
) -> FileChunkPlan:
    """The ``chunk_size`` / ``total_chunks`` to announce in ``FileHeader`` (0 chunks if empty)."""
    size = file_chunk_size(
        file_id, max_datagram_size=max_datagram_size, fec_reserve_shards=fec_reserve_shards
    )
    total = -(-file_size // size)
    if total > _U32_MAX:
        raise ChunkingError(f"file of {file_size} bytes needs more than 2^32-1 chunks")
    return FileChunkPlan(chunk_size=size, total_chunks=total)


def split_file_payload(
    data: bytes,
    file_id: int,
    *,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    fec_reserve_shards: int = DEFAULT_FEC_RESERVE_SHARDS,
) -> list[rift_pb2.FileChunk]:
    """Split an in-memory file into ``FileChunk``s following :func:`plan_file_chunks`."""
    plan = plan_file_chunks(
        file_id,
        len(data),
        max_datagram_size=max_datagram_size,
        fec_reserve_shards=fec_reserve_shards,
    )
    view = memoryview(data)
    chunks = []
    for index in range(plan.total_chunks):
        start, end = plan.chunk_range(index, len(data))
        chunks.append(
            rift_pb2.FileChunk(file_id=file_id, chunk_index=index, payload=bytes(view[start:end]))
        )
    return chunks


def _check_uint(value: int, maximum: int, name: str) -> None:
    if not 0 <= value <= maximum:
        raise ChunkingError(f"{name} must be in 0..{maximum}, got {value}")
