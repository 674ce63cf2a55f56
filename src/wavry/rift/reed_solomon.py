"""Reed–Solomon erasure code of docs/spec/RIFT.md §7.2, through zfec (sans-I/O).

The spec's code (GF(2^8), polynomial 0x11d, generator `V · inv(V[0..k-1])`) is the one of
Rizzo's `fec.c`, which zfec packages in C; `tests/rift/test_reed_solomon.py` holds zfec to the
spec's vectors. Encoders and decoders are cached per shape (building one inverts a matrix).

zfec wants equal-length blocks and, when decoding, every data block present at its own index;
the helpers here pad and place the shards so callers deal in RIFT's terms only.
"""

from __future__ import annotations

from functools import lru_cache

import zfec

__all__ = ["MAX_TOTAL_SHARDS", "rs_parities", "rs_recover"]

#: k + m of one group (spec/RIFT.md §7.2: GF(2^8) has 255 usable evaluation points)
MAX_TOTAL_SHARDS = 255


@lru_cache(maxsize=512)
def _encoder(k: int, n: int) -> zfec.Encoder:
    return zfec.Encoder(k, n)


@lru_cache(maxsize=512)
def _decoder(k: int, n: int) -> zfec.Decoder:
    return zfec.Decoder(k, n)


def _check(k: int, m: int) -> None:
    if k < 1 or m < 1 or k + m > MAX_TOTAL_SHARDS:
        raise ValueError(f"Reed-Solomon needs k >= 1, m >= 1, k + m <= 255; got k={k}, m={m}")


def rs_parities(shards: list[bytes], m: int, length: int | None = None) -> list[bytes]:
    """The `m` parities of `shards` (each zero-padded to `length`, default the longest)."""
    k = len(shards)
    _check(k, m)
    size = max(len(s) for s in shards) if length is None else length
    blocks = [s if len(s) == size else s + bytes(size - len(s)) for s in shards]
    return list(_encoder(k, k + m).encode(blocks, list(range(k, k + m))))


def rs_recover(
    k: int, m: int, present: dict[int, bytes], parities: dict[int, bytes], length: int
) -> list[bytes]:
    """All `k` data shards (each `length` bytes, padded) from any `k` of the group.

    `present`: data shard index → shard (any length up to `length`); `parities`: parity index →
    parity (`length` bytes). Needs `len(present) + len(parities) >= k`."""
    _check(k, m)
    if len(present) + len(parities) < k:
        raise ValueError("fewer than k shards: nothing to recover from")
    blocks: list[bytes] = []
    numbers: list[int] = []
    spare = iter(sorted(parities.items()))
    for i in range(k):
        shard = present.get(i)
        if shard is not None:
            blocks.append(shard if len(shard) == length else shard + bytes(length - len(shard)))
            numbers.append(i)
        else:
            j, parity = next(spare)
            blocks.append(parity)
            numbers.append(k + j)
    return [bytes(b) for b in _decoder(k, k + m).decode(blocks, numbers)]
