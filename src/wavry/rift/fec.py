"""FEC encoder: parities over encrypted payloads (docs/spec/RIFT.md §7), both schemes.

Sans-I/O: no sockets, no clocks; time is always a ``now`` argument in seconds. The receiver's
half is `fec_decoder.FecDecoder`; the redundancy policy is `redundancy.RedundancyPolicy`.

A group covers ``n`` transport datagrams with consecutive packet ids ``first .. first+n-1``.
Shard ``i`` is the encrypted payload (ciphertext and tag, the bytes after the 18-byte header) of
datagram ``first+i``, zero-padded to the longest shard. With interleaved XOR (§7.1) parity ``j``
is the XOR of the shards ``i`` with ``i mod m == j``; with Reed–Solomon (§7.2, `reed_solomon`)
parity ``j`` is row ``k+j`` of the systematic generator applied to the shards, and any ``n`` of
the ``n+m`` datagrams rebuild the group. The decoder never needs keys: recovered payloads are
handed back to the caller, which rebuilds the header and runs the normal replay check and AEAD.

Group rules left open by the spec (see docs/rift-media.md):

* a group closes when it holds ``k`` shards, when the next added id is not ``previous + 1``,
  when adding the shard would make a parity datagram exceed the maximum datagram size, on
  :meth:`FecEncoder.flush` and when it is older than ``max_group_delay`` (:meth:`FecEncoder.poll`);
  a group closed early with ``n < k`` shards carries the plan's parity count for ``n``
  (by default ``min(m, n)``; XOR never more than ``n``);
* ``m = 0`` protects nothing: no shard is kept, no parity computed (a loss-free path);
* ids at or below the last added id (retransmissions) are ignored and leave the group open;
* a shard too large for any parity datagram is left unprotected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavry.rift import rift_pb2
from wavry.rift.chunking import (
    AEAD_TAG_SIZE,
    MAX_GROUP_SHARDS,
    TRANSPORT_HEADER_SIZE,
    uint_field_size,
    varint_size,
)
from wavry.rift.reed_solomon import MAX_TOTAL_SHARDS, rs_parities

#: the two codes of docs/spec/RIFT.md §7 (`FecPacket.scheme`, `HelloAck.fec_scheme`)
XOR: int = rift_pb2.FEC_XOR_INTERLEAVED
REED_SOLOMON: int = rift_pb2.FEC_REED_SOLOMON

MAX_UDP_PAYLOAD = 65507
MAX_SHARD_LEN = MAX_UDP_PAYLOAD - TRANSPORT_HEADER_SIZE


def xor_parities(shards: list[bytes], parity_count: int) -> list[bytes]:
    """The ``parity_count`` interleaved XOR parities of ``shards`` (zero-padded to the longest)."""
    longest = max(len(s) for s in shards)
    matrix = np.zeros((len(shards), longest), dtype=np.uint8)
    for row, shard in enumerate(shards):
        matrix[row, : len(shard)] = np.frombuffer(shard, dtype=np.uint8)
    return [
        np.bitwise_xor.reduce(matrix[j::parity_count], axis=0).tobytes()
        for j in range(parity_count)
    ]


class _OpenGroup:
    """The FEC group being filled (a plain class: one per group, see delta._SendRecord)."""

    __slots__ = ("first_packet_id", "ids_size", "lengths_varint_bytes", "longest", "shards",
                 "started_at")  # fmt: skip

    def __init__(self, first_packet_id: int, started_at: float) -> None:
        self.first_packet_id = first_packet_id
        self.started_at = started_at
        self.shards: list[bytes] = []
        self.lengths_varint_bytes = 0
        self.longest = 0
        #: size of the group_id and first_packet_id fields of its parities (-1: not yet known)
        self.ids_size = -1

    @property
    def last_packet_id(self) -> int:
        return self.first_packet_id + len(self.shards) - 1


@dataclass
class FecEncoderStats:
    groups_closed: int = 0
    groups_closed_early: int = 0
    parity_packets: int = 0
    unprotected_datagrams: int = 0
    ignored_old_ids: int = 0


class FecEncoder:
    """Builds parity ``FecPacket``s for outgoing transport datagrams.

    Feed every new non-FEC datagram (never a retransmission, never an FEC datagram) in
    packet-id order with :meth:`add`; send the returned parities right away, after the group's
    datagrams. Call :meth:`flush` after the last datagram of a frame and :meth:`poll` on timer so
    that sparse traffic (input, audio) is protected without waiting for ``k`` datagrams.
    """

    def __init__(
        self,
        k: int,
        m: int,
        *,
        scheme: int = XOR,
        max_datagram_size: int = 1400,
        max_group_delay: float = 0.005,
        first_group_id: int = 1,
    ) -> None:
        self._scheme = scheme
        self._plan = _plan(scheme, k, m, None)
        self._pending_plan: tuple[int, tuple[int, ...]] | None = None
        self._k = k
        self._max_datagram_size = max_datagram_size
        self._max_group_delay = max_group_delay
        self._next_group_id = first_group_id
        self._group: _OpenGroup | None = None
        self._last_added_id = 0
        self.stats = FecEncoderStats()

    @property
    def k(self) -> int:
        return self._k

    @property
    def m(self) -> int:
        """Parities of a full group."""
        return self._plan[self._k]

    @property
    def scheme(self) -> int:
        """The `FecScheme` of the parities (`rift_pb2.FEC_XOR_INTERLEAVED` or
        `FEC_REED_SOLOMON`)."""
        return self._scheme

    @property
    def pending_shards(self) -> int:
        return len(self._group.shards) if self._group else 0

    def set_scheme(self, scheme: int) -> None:
        """Switch the code (negotiated in Hello/HelloAck); the open group is closed first by the
        caller (`flush`), or it is protected with the new code."""
        self._plan = _plan(scheme, self._k, self.m, None)
        self._scheme = scheme

    def set_params(self, k: int, m: int, parities: tuple[int, ...] | None = None) -> None:
        """Change the group shape; takes effect with the next group (at once if none is open).

        ``parities[n]`` (optional, ``len == k + 1``) is the parity count of a group closed with
        ``n`` shards; by default ``min(m, n)`` for ``n < k``."""
        plan = _plan(self._scheme, k, m, parities)
        if self._group is None:
            self._k, self._plan = k, plan
        else:
            self._pending_plan = (k, plan)

    def add(
        self, packet_id: int, encrypted_payload: bytes, now: float, *, close_full: bool = True
    ) -> list[rift_pb2.FecPacket]:
        """Add the datagram ``packet_id``; returns the parities of every group this closed.
        ``close_full=False`` leaves a group that this shard fills open for :meth:`flush` (the
        sender hands the datagram out before the parities are computed)."""
        if packet_id <= self._last_added_id:
            self.stats.ignored_old_ids += 1
            return []
        self._last_added_id = packet_id
        out: list[rift_pb2.FecPacket] = []
        group = self._group
        length = len(encrypted_payload)
        if group is not None and (
            packet_id != group.last_packet_id + 1 or not self._fits(group, length)
        ):
            out += self._close()
            group = None
        if group is None:
            if not self._plan[self._k]:
                return out  # m = 0: nothing to protect with
            group = _OpenGroup(first_packet_id=packet_id, started_at=now)
            if not self._fits(group, length):
                self.stats.unprotected_datagrams += 1
                return out
            self._group = group
        group.shards.append(bytes(encrypted_payload))
        group.lengths_varint_bytes += varint_size(length)
        if length > group.longest:
            group.longest = length
        if close_full and len(group.shards) >= self._k:
            out += self._close()
        return out

    def flush(self) -> list[rift_pb2.FecPacket]:
        """Close the open group (if any) and return its parities."""
        return self._close()

    def poll(self, now: float) -> list[rift_pb2.FecPacket]:
        """Close the open group if it has waited ``max_group_delay``."""
        deadline = self.next_timer()
        return self._close() if deadline is not None and now >= deadline else []

    def next_timer(self) -> float | None:
        if self._group is None:
            return None
        return self._group.started_at + self._max_group_delay

    def _fits(self, group: _OpenGroup, extra_len: int) -> bool:
        """Whether the group's largest parity datagram still fits with one more shard."""
        size = self._parity_message_size(group, extra_len)
        return TRANSPORT_HEADER_SIZE + size + AEAD_TAG_SIZE <= self._max_datagram_size

    def _parity_message_size(self, group: _OpenGroup, extra_len: int) -> int:
        """`fec_message_size` of the group's last parity with one more shard of `extra_len`.

        Runs for every datagram sent, so it adds up the field sizes inline (the group's two id
        fields once per group); a test holds it equal to `fec_message_size`."""
        count = len(group.shards) + 1
        lengths = group.lengths_varint_bytes + varint_size(extra_len)
        longest = group.longest if group.longest > extra_len else extra_len
        pc = self._plan[count] if count <= self._k else self._plan[self._k]
        pc = max(pc, 1)
        if group.ids_size < 0:
            group.ids_size = (
                uint_field_size(self._next_group_id)
                + uint_field_size(group.first_packet_id)
                + uint_field_size(self._scheme)
            )
        body = (
            group.ids_size
            + 1
            + varint_size(count)  # shard_count >= 1
            + (1 + varint_size(pc - 1) if pc > 1 else 0)  # parity_index of the last parity
            + (1 + varint_size(longest) + longest if longest else 0)  # payload
            + 1
            + varint_size(lengths)
            + lengths  # shard_lengths (never empty)
            + 1
            + varint_size(pc)  # parity_count >= 1
        )
        media = 1 + varint_size(body) + body
        return 1 + varint_size(media) + media

    def _close(self) -> list[rift_pb2.FecPacket]:
        group = self._group
        if group is None:
            return []
        self._group = None
        count = len(group.shards)
        parity_count = self._plan[count]
        if self._pending_plan is not None:
            self._k, self._plan = self._pending_plan
            self._pending_plan = None
        if not parity_count:
            return []
        lengths = [len(s) for s in group.shards]
        group_id = self._next_group_id
        self._next_group_id += 1
        self.stats.groups_closed += 1
        if count < self._k:
            self.stats.groups_closed_early += 1
        self.stats.parity_packets += parity_count
        scheme = self._scheme
        if scheme == REED_SOLOMON:
            parities = rs_parities(group.shards, parity_count, group.longest)
            order: list[int] | range = range(parity_count)
        else:
            parities = xor_parities(group.shards, parity_count)
            # Send order: the classes go on cycling after the last shard (shard i is class
            # i mod m, so parity (count mod m) comes first). Any m consecutive datagrams of the
            # group, the data/parity boundary included, then hit m distinct classes, and a burst
            # of up to m losses there is repairable too; in index order a burst of 2 across the
            # boundary (the last shard and parity 0, both class 0 when count mod m == 1) would
            # not be.
            order = [(count + i) % parity_count for i in range(parity_count)]
        return [
            rift_pb2.FecPacket(
                group_id=group_id,
                first_packet_id=group.first_packet_id,
                shard_count=count,
                parity_index=j,
                parity_count=parity_count,
                payload=parities[j],
                shard_lengths=lengths,
                scheme=scheme,  # type: ignore[arg-type]
            )
            for j in order
        ]


def _plan(scheme: int, k: int, m: int, parities: tuple[int, ...] | None) -> tuple[int, ...]:
    """Parities of a group closed with n shards, for n = 0..k (index 0 unused)."""
    if scheme not in (XOR, REED_SOLOMON):
        raise ValueError(f"unknown FEC scheme {scheme}")
    if not 1 <= k <= MAX_GROUP_SHARDS or m < 0:
        raise ValueError(f"FEC needs 1 <= k <= {MAX_GROUP_SHARDS} and m >= 0, got k={k}, m={m}")
    if parities is None:
        parities = (0, *(min(m, n) for n in range(1, k)), m)
    if len(parities) != k + 1 or parities[k] != m:
        raise ValueError(f"the parity plan needs k + 1 = {k + 1} entries ending with m = {m}")
    for n, p in enumerate(parities[1:], start=1):
        if p < 0 or (scheme == XOR and p > n) or n + p > MAX_TOTAL_SHARDS:
            raise ValueError(
                f"a group of {n} shards cannot carry {p} parities with "
                + ("interleaved XOR (m <= k)" if scheme == XOR else "Reed-Solomon (k + m <= 255)")
            )
    return parities
