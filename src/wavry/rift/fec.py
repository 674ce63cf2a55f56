"""Interleaved XOR forward error correction over encrypted payloads (docs/spec/RIFT.md §7.1).

Sans-I/O: no sockets, no clocks; time is always a ``now`` argument in seconds.

A group covers ``n`` transport datagrams with consecutive packet ids ``first .. first+n-1``.
Shard ``i`` is the encrypted payload (ciphertext and tag, the bytes after the 18-byte header) of
datagram ``first+i``. Parity ``j`` is the XOR of the shards ``i`` with ``i mod m == j``, shorter
shards padded with zeros to the longest one. The decoder never needs keys: recovered payloads are
handed back to the caller, which rebuilds the header and runs the normal replay check and AEAD.

Group rules left open by the spec (see docs/rift-media.md):

* a group closes when it holds ``k`` shards, when the next added id is not ``previous + 1``,
  when adding the shard would make a parity datagram exceed the maximum datagram size, on
  :meth:`FecEncoder.flush` and when it is older than ``max_group_delay`` (:meth:`FecEncoder.poll`);
  a group closed early carries ``shard_count = n < k`` and ``parity_count = min(m, n)``;
* ids at or below the last added id (retransmissions) are ignored and leave the group open;
* a shard too large for any parity datagram is left unprotected.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from wavry.rift import rift_pb2
from wavry.rift.chunking import (
    AEAD_TAG_SIZE,
    MAX_GROUP_SHARDS,
    MAX_PACKET_ID,
    TRANSPORT_HEADER_SIZE,
    uint_field_size,
    varint_size,
)

MAX_UDP_PAYLOAD = 65507
MAX_SHARD_LEN = MAX_UDP_PAYLOAD - TRANSPORT_HEADER_SIZE
_EXPIRE_EVERY_S = 0.005
_REORDER_SLACK_IDS = 4
_FEC_ACTIVE_HORIZON_IDS = 1024


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


@dataclass(slots=True)
class _OpenGroup:
    first_packet_id: int
    started_at: float
    shards: list[bytes] = field(default_factory=list)
    lengths_varint_bytes: int = 0
    longest: int = 0
    #: size of the group_id and first_packet_id fields of its parities (-1: not yet known)
    ids_size: int = -1

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
        max_datagram_size: int = 1400,
        max_group_delay: float = 0.005,
        first_group_id: int = 1,
    ) -> None:
        _check_params(k, m)
        self._k = k
        self._m = m
        self._pending_params: tuple[int, int] | None = None
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
        return self._m

    @property
    def pending_shards(self) -> int:
        return len(self._group.shards) if self._group else 0

    def set_params(self, k: int, m: int) -> None:
        """Change ``(k, m)``; takes effect with the next group (at once if none is open)."""
        _check_params(k, m)
        if self._group is None:
            self._k, self._m = k, m
        else:
            self._pending_params = (k, m)

    def add(self, packet_id: int, encrypted_payload: bytes, now: float) -> list[rift_pb2.FecPacket]:
        """Add the datagram ``packet_id``; returns the parities of every group this closed."""
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
            group = _OpenGroup(first_packet_id=packet_id, started_at=now)
            if not self._fits(group, length):
                self.stats.unprotected_datagrams += 1
                return out
            self._group = group
        group.shards.append(bytes(encrypted_payload))
        group.lengths_varint_bytes += varint_size(length)
        if length > group.longest:
            group.longest = length
        if len(group.shards) >= self._k:
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
        pc = self._m if self._m < count else count
        if group.ids_size < 0:
            group.ids_size = uint_field_size(self._next_group_id) + uint_field_size(
                group.first_packet_id
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
        parity_count = min(self._m, count)
        lengths = [len(s) for s in group.shards]
        parities = xor_parities(group.shards, parity_count)
        group_id = self._next_group_id
        self._next_group_id += 1
        self.stats.groups_closed += 1
        if count < self._k:
            self.stats.groups_closed_early += 1
        self.stats.parity_packets += parity_count
        if self._pending_params is not None:
            self._k, self._m = self._pending_params
            self._pending_params = None
        # Send order: the classes go on cycling after the last shard (shard i is class i mod m,
        # so parity (count mod m) comes first). Any m consecutive datagrams of the group, the
        # data/parity boundary included, then hit m distinct classes, and a burst of up to m
        # losses there is repairable too; in index order a burst of 2 across the boundary
        # (the last shard and parity 0, both class 0 when count mod m == 1) would not be.
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
            )
            for j in order
        ]


def _check_params(k: int, m: int) -> None:
    if not 1 <= m <= k <= MAX_GROUP_SHARDS:
        raise ValueError(f"FEC needs 1 <= m <= k <= {MAX_GROUP_SHARDS}, got k={k}, m={m}")


@dataclass
class _ParityGroup:
    group_id: int
    first_packet_id: int
    shard_lengths: tuple[int, ...]
    parity_count: int
    created_at: float
    parities: dict[int, bytes] = field(default_factory=dict)
    resolved_classes: set[int] = field(default_factory=set)

    @property
    def shard_count(self) -> int:
        return len(self.shard_lengths)

    @property
    def last_packet_id(self) -> int:
        return self.first_packet_id + self.shard_count - 1

    def class_packet_ids(self, parity_index: int) -> range:
        return range(
            self.first_packet_id + parity_index, self.last_packet_id + 1, self.parity_count
        )


@dataclass
class FecDecoderStats:
    parities_accepted: int = 0
    parities_invalid: int = 0
    parities_duplicate: int = 0
    parities_stale: int = 0
    parities_conflicting: int = 0
    recovered: int = 0
    recovery_inconsistent: int = 0
    groups_expired: int = 0


class FecDecoder:
    """Rebuilds lost encrypted payloads from parity ``FecPacket``s.

    Call :meth:`on_datagram` for every authenticated non-FEC datagram (recovered ones included,
    once they passed AEAD) and :meth:`on_parity` for every authenticated ``FecPacket``. Both
    return recovered ``(packet_id, encrypted_payload)`` pairs; the caller puts the rebuilt header
    in front and processes them like received datagrams. Malformed parities are ignored.
    """

    def __init__(
        self,
        *,
        max_age: float = 1.0,
        max_stored_shards: int = 8192,
        max_groups: int = 512,
        max_shard_len: int = MAX_SHARD_LEN,
    ) -> None:
        self._max_age = max_age
        self._max_stored_shards = max_stored_shards
        self._max_groups = max_groups
        self._max_shard_len = max_shard_len
        self._shards: OrderedDict[int, tuple[bytes, float]] = OrderedDict()
        self._carrier_ids: OrderedDict[int, float] = OrderedDict()
        #: ids that probably carry the other parities of a group seen (parities of a group are
        #: sent back to back): a receiver need not NACK them (they are never resent anyway)
        self._sibling_ids: OrderedDict[int, None] = OrderedDict()
        self._groups: dict[int, _ParityGroup] = {}
        self._group_starts: list[tuple[int, int]] = []  # sorted (first_packet_id, group_id)
        self._highest_id = 0
        self._latest_group: _ParityGroup | None = None
        self._last_expire = -math.inf
        self.stats = FecDecoderStats()

    def on_datagram(
        self, packet_id: int, encrypted_payload: bytes, now: float
    ) -> list[tuple[int, bytes]]:
        self._expire(now)
        if packet_id in self._shards or not 1 <= packet_id <= MAX_PACKET_ID:
            return []
        self._shards[packet_id] = (bytes(encrypted_payload), now)
        self._highest_id = max(self._highest_id, packet_id)
        while len(self._shards) > self._max_stored_shards:
            self._shards.popitem(last=False)
        group = self._group_covering(packet_id)
        if group is None:
            return []
        parity_index = (packet_id - group.first_packet_id) % group.parity_count
        return self._try_recover(group, parity_index)

    def on_parity(
        self, fec: rift_pb2.FecPacket, now: float, carrier_packet_id: int | None = None
    ) -> list[tuple[int, bytes]]:
        """Accept one parity; ``carrier_packet_id`` is the id of the datagram that carried it."""
        self._expire(now)
        group = self._validate(fec, carrier_packet_id)
        if group is None:
            self.stats.parities_invalid += 1
            return []
        if carrier_packet_id is not None:
            self._carrier_ids[carrier_packet_id] = now
            self._highest_id = max(self._highest_id, carrier_packet_id)
            while len(self._carrier_ids) > self._max_stored_shards:
                self._carrier_ids.popitem(last=False)
            # parities usually ride right after the group's ids, in whatever order (ours: see
            # FecEncoder._close); otherwise assume index order from the carrier
            first_carrier = group.last_packet_id + 1
            if not first_carrier <= carrier_packet_id < first_carrier + group.parity_count:
                first_carrier = carrier_packet_id - fec.parity_index
            for i in range(group.parity_count):
                sibling = first_carrier + i
                if sibling != carrier_packet_id and sibling > group.last_packet_id:
                    self._sibling_ids[sibling] = None
            while len(self._sibling_ids) > self._max_stored_shards:
                self._sibling_ids.popitem(last=False)
        if group.last_packet_id + self._max_stored_shards < self._highest_id:
            self.stats.parities_stale += 1
            return []
        known = self._groups.get(fec.group_id)
        if known is None:
            if self._overlaps(group):
                self.stats.parities_conflicting += 1
                return []
            known = group
            known.created_at = now
            self._insert_group(known)
        elif (known.first_packet_id, known.shard_lengths, known.parity_count) != (
            group.first_packet_id,
            group.shard_lengths,
            group.parity_count,
        ):
            self.stats.parities_conflicting += 1
            return []
        if fec.parity_index in known.parities:
            self.stats.parities_duplicate += 1
            return []
        known.parities[fec.parity_index] = bytes(fec.payload)
        self.stats.parities_accepted += 1
        return self._try_recover(known, fec.parity_index)

    def likely_parity(self, packet_id: int) -> bool:
        """Whether ``packet_id`` is probably a parity datagram of a group already seen (one of
        its sibling parities arrived next to it)."""
        return packet_id in self._sibling_ids

    def will_repair(self, packet_id: int) -> bool:
        """Whether FEC is expected to rebuild the missing datagram ``packet_id``: its parity
        class has no other missing shard and its parity is in hand or still expected soon."""
        if packet_id in self._shards:
            return False
        group = self._group_covering(packet_id)
        if group is not None:
            parity_index = (packet_id - group.first_packet_id) % group.parity_count
            if parity_index in group.resolved_classes:
                # Already rebuilt (and then rejected by AEAD) or found inconsistent.
                return False
            if self._missing_in_class(group, parity_index) != [packet_id]:
                return False
            if parity_index in group.parities:
                return True
            expected_by = group.last_packet_id + group.parity_count + _REORDER_SLACK_IDS
            return self._highest_id <= expected_by
        return self._predict_unseen_group(packet_id)

    def _predict_unseen_group(self, packet_id: int) -> bool:
        latest = self._latest_group
        if latest is None or packet_id <= latest.last_packet_id:
            return False
        if packet_id > latest.last_packet_id + _FEC_ACTIVE_HORIZON_IDS:
            return False
        k, m = latest.shard_count, latest.parity_count
        if self._highest_id > packet_id + k + m + _REORDER_SLACK_IDS:
            return False
        low = max(latest.last_packet_id + 1, packet_id - (k - 1))
        high = min(self._highest_id, packet_id + (k - 1))
        start = low + (packet_id - low) % m
        return not any(
            q != packet_id and q not in self._shards and q not in self._carrier_ids
            for q in range(start, high + 1, m)
        )

    def _validate(
        self, fec: rift_pb2.FecPacket, carrier_packet_id: int | None
    ) -> _ParityGroup | None:
        count = fec.shard_count
        if not 1 <= count <= MAX_GROUP_SHARDS or len(fec.shard_lengths) != count:
            return None
        if not 1 <= fec.parity_count <= count or fec.parity_index >= fec.parity_count:
            return None
        lengths = tuple(fec.shard_lengths)
        if any(not AEAD_TAG_SIZE <= n <= self._max_shard_len for n in lengths):
            return None
        if len(fec.payload) != max(lengths):
            return None
        first = fec.first_packet_id
        if first < 1 or first + count - 1 > MAX_PACKET_ID:
            return None
        if carrier_packet_id is not None and carrier_packet_id <= first + count - 1:
            return None
        return _ParityGroup(
            group_id=fec.group_id,
            first_packet_id=first,
            shard_lengths=lengths,
            parity_count=fec.parity_count,
            created_at=0.0,
        )

    def _missing_in_class(self, group: _ParityGroup, parity_index: int) -> list[int]:
        return [p for p in group.class_packet_ids(parity_index) if p not in self._shards]

    def _try_recover(self, group: _ParityGroup, parity_index: int) -> list[tuple[int, bytes]]:
        parity = group.parities.get(parity_index)
        if parity is None or parity_index in group.resolved_classes:
            return []
        missing = self._missing_in_class(group, parity_index)
        if len(missing) > 1:
            return []
        group.resolved_classes.add(parity_index)
        if not missing:
            return []
        lost_id = missing[0]
        lost_len = group.shard_lengths[lost_id - group.first_packet_id]
        acc = np.frombuffer(parity, dtype=np.uint8).copy()
        for pid in group.class_packet_ids(parity_index):
            if pid == lost_id:
                continue
            shard = self._shards[pid][0]
            if len(shard) != group.shard_lengths[pid - group.first_packet_id]:
                self.stats.recovery_inconsistent += 1
                return []
            acc[: len(shard)] ^= np.frombuffer(shard, dtype=np.uint8)
        if acc[lost_len:].any():
            self.stats.recovery_inconsistent += 1
            return []
        self.stats.recovered += 1
        return [(lost_id, acc[:lost_len].tobytes())]

    def _group_covering(self, packet_id: int) -> _ParityGroup | None:
        index = bisect.bisect_right(self._group_starts, (packet_id, math.inf)) - 1
        if index < 0:
            return None
        group = self._groups[self._group_starts[index][1]]
        return group if packet_id <= group.last_packet_id else None

    def _overlaps(self, group: _ParityGroup) -> bool:
        index = bisect.bisect_left(self._group_starts, (group.first_packet_id, -1))
        if index < len(self._group_starts) and self._group_starts[index][0] <= group.last_packet_id:
            return True
        if index > 0:
            before = self._groups[self._group_starts[index - 1][1]]
            if before.last_packet_id >= group.first_packet_id:
                return True
        return False

    def _insert_group(self, group: _ParityGroup) -> None:
        self._groups[group.group_id] = group
        bisect.insort(self._group_starts, (group.first_packet_id, group.group_id))
        if self._latest_group is None or group.first_packet_id > self._latest_group.first_packet_id:
            self._latest_group = group
        while len(self._groups) > self._max_groups:
            self._remove_group(self._group_starts[0][1])

    def _remove_group(self, group_id: int) -> None:
        group = self._groups.pop(group_id)
        self._group_starts.remove((group.first_packet_id, group_id))
        self.stats.groups_expired += 1
        if self._latest_group is group:
            self._latest_group = (
                self._groups[self._group_starts[-1][1]] if self._group_starts else None
            )

    def _expire(self, now: float) -> None:
        if (
            now - self._last_expire < _EXPIRE_EVERY_S
            and len(self._shards) <= self._max_stored_shards
        ):
            return  # expiry is housekeeping: once per few ms is plenty
        self._last_expire = now
        horizon = now - self._max_age
        while self._shards:
            oldest_id, (_, stored_at) = next(iter(self._shards.items()))
            if stored_at >= horizon:
                break
            del self._shards[oldest_id]
        while self._carrier_ids and next(iter(self._carrier_ids.values())) < horizon:
            self._carrier_ids.popitem(last=False)
        while self._groups:
            oldest = next(iter(self._groups.values()))  # dict order = creation order
            if oldest.created_at >= horizon:
                break
            self._remove_group(oldest.group_id)


@dataclass(frozen=True)
class FecParams:
    k: int
    m: int

    @property
    def redundancy(self) -> float:
        return self.m / self.k


class AdaptiveFecPolicy:
    """Redundancy ratio (parities per data datagram) driven by the congestion controller.

    Call :meth:`on_sample` once per controller sample: the ratio grows ×``growth`` when loss
    coincides with congestion and decays toward ``base_ratio`` while stable; :meth:`params` maps
    the ratio and the expected loss burst length to ``(k, m)``.
    """

    def __init__(
        self,
        *,
        base_ratio: float = 0.05,
        max_ratio: float = 0.5,
        growth: float = 1.5,
        decay: float = 0.9,
        max_group_shards: int = 32,
    ) -> None:
        if not 0 < base_ratio <= max_ratio <= 1 or growth < 1 or not 0 <= decay < 1:
            raise ValueError("need 0 < base_ratio <= max_ratio <= 1, growth >= 1, 0 <= decay < 1")
        if not 1 <= max_group_shards <= MAX_GROUP_SHARDS:
            raise ValueError(f"max_group_shards must be in 1..{MAX_GROUP_SHARDS}")
        self._base = base_ratio
        self._max = max_ratio
        self._growth = growth
        self._decay = decay
        self._max_group_shards = max_group_shards
        self._ratio = base_ratio

    @property
    def ratio(self) -> float:
        return self._ratio

    def on_sample(self, *, loss_fraction: float, congested: bool, stable: bool) -> float:
        if loss_fraction > 0 and congested:
            self._ratio = min(self._max, self._ratio * self._growth)
        elif stable:
            self._ratio = self._base + (self._ratio - self._base) * self._decay
            if self._ratio - self._base < 1e-4:
                self._ratio = self._base
        return self._ratio

    def params(self, expected_burst: int = 1) -> FecParams:
        return fec_params_for_ratio(self._ratio, expected_burst, self._max_group_shards)


def fec_params_for_ratio(
    ratio: float, expected_burst: int = 1, max_group_shards: int = 32
) -> FecParams:
    """``(k, m)`` for a redundancy ``ratio`` (parities per data datagram): ``m`` covers the
    expected loss burst, ``k = round(m / ratio)`` bounded to ``m .. max_group_shards``."""
    if ratio <= 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    max_group_shards = max(1, min(max_group_shards, MAX_GROUP_SHARDS))
    m = max(1, min(expected_burst, max_group_shards))
    k = max(m, min(max_group_shards, round(m / ratio)))
    return FecParams(k=k, m=m)
