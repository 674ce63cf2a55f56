"""FEC decoder (receiver side, docs/spec/RIFT.md §7): rebuilds lost encrypted payloads.

Both schemes: interleaved XOR (§7.1, a class with one missing shard is rebuilt) and
Reed–Solomon (§7.2, a group with at most as many missing shards as parities in hand is
rebuilt whole); each `FecPacket` says which (`scheme`). Sans-I/O: no sockets, no clocks; time
is always a ``now`` argument in seconds. The decoder never holds keys: recovered payloads are
handed back to the caller, which rebuilds the header and runs the normal replay check and AEAD.
See docs/rift-media.md for the rules.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from wavry.rift import rift_pb2
from wavry.rift.chunking import AEAD_TAG_SIZE, MAX_GROUP_SHARDS, MAX_PACKET_ID
from wavry.rift.fec import MAX_SHARD_LEN, REED_SOLOMON, XOR
from wavry.rift.reed_solomon import MAX_TOTAL_SHARDS, rs_recover

_EXPIRE_EVERY_S = 0.005
_REORDER_SLACK_IDS = 4
_FEC_ACTIVE_HORIZON_IDS = 1024


@dataclass
class _ParityGroup:
    group_id: int
    first_packet_id: int
    shard_lengths: tuple[int, ...]
    parity_count: int
    created_at: float
    scheme: int = XOR
    parities: dict[int, bytes] = field(default_factory=dict)
    #: XOR: classes attempted; Reed-Solomon: {0} once the group was attempted
    resolved_classes: set[int] = field(default_factory=set)
    #: the group's last data id (read per datagram: a field, not a property)
    last_packet_id: int = field(init=False)

    def __post_init__(self) -> None:
        self.last_packet_id = self.first_packet_id + len(self.shard_lengths) - 1

    @property
    def shard_count(self) -> int:
        return len(self.shard_lengths)

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
        schemes: tuple[int, ...] = (XOR, REED_SOLOMON),
        max_age: float = 1.0,
        max_stored_shards: int = 8192,
        max_groups: int = 512,
        max_shard_len: int = MAX_SHARD_LEN,
    ) -> None:
        self._max_age = max_age
        self._max_stored_shards = max_stored_shards
        self._max_groups = max_groups
        self._max_shard_len = max_shard_len
        self._schemes = frozenset(schemes)
        #: ids just rebuilt by Reed-Solomon and on their way through AEAD (one call returns
        #: several): not worth a NACK meanwhile
        self._rebuilding: set[int] = set()
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
        shards = self._shards
        if now >= self._last_expire + _EXPIRE_EVERY_S:
            self._expire(now)
        if packet_id in shards or not 1 <= packet_id <= MAX_PACKET_ID:
            return []
        if self._rebuilding:
            self._rebuilding.discard(packet_id)
        shards[packet_id] = (encrypted_payload, now)  # bytes: immutable, kept as they are
        if packet_id > self._highest_id:
            self._highest_id = packet_id
        if len(shards) > self._max_stored_shards:
            while len(shards) > self._max_stored_shards:
                shards.popitem(last=False)
        latest = self._latest_group
        if latest is None or packet_id > latest.last_packet_id:
            return []  # groups do not overlap: none covers an id past the latest one's
        group = self._group_covering(packet_id)
        if group is None:
            return []
        if group.scheme == REED_SOLOMON:
            return self._try_recover_rs(group)
        parity_index = (packet_id - group.first_packet_id) % group.parity_count
        return self._try_recover(group, parity_index)

    def on_parity(
        self, fec: rift_pb2.FecPacket, now: float, carrier_packet_id: int | None = None
    ) -> list[tuple[int, bytes]]:
        """Accept one parity; ``carrier_packet_id`` is the id of the datagram that carried it."""
        if now >= self._last_expire + _EXPIRE_EVERY_S:
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
        elif (known.first_packet_id, known.shard_lengths, known.parity_count, known.scheme) != (
            group.first_packet_id,
            group.shard_lengths,
            group.parity_count,
            group.scheme,
        ):
            self.stats.parities_conflicting += 1
            return []
        if fec.parity_index in known.parities:
            self.stats.parities_duplicate += 1
            return []
        known.parities[fec.parity_index] = bytes(fec.payload)
        self.stats.parities_accepted += 1
        if known.scheme == REED_SOLOMON:
            return self._try_recover_rs(known)
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
        if packet_id in self._rebuilding:
            return True
        group = self._group_covering(packet_id)
        if group is not None and group.scheme == REED_SOLOMON:
            return self._will_repair_rs(group, packet_id)
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
        if latest.scheme == REED_SOLOMON:
            # any m losses of a group are repaired: this one is among the first m nearby
            lost = sum(
                1
                for q in range(low, packet_id)
                if q not in self._shards and q not in self._carrier_ids
            )
            return lost < m
        start = low + (packet_id - low) % m
        return not any(
            q != packet_id and q not in self._shards and q not in self._carrier_ids
            for q in range(start, high + 1, m)
        )

    def _validate(
        self, fec: rift_pb2.FecPacket, carrier_packet_id: int | None
    ) -> _ParityGroup | None:
        count = fec.shard_count
        scheme = fec.scheme
        if scheme not in self._schemes or len(fec.shard_lengths) != count:
            return None
        if scheme == XOR:
            if not 1 <= count <= MAX_GROUP_SHARDS or not 1 <= fec.parity_count <= count:
                return None
        elif count < 1 or fec.parity_count < 1 or count + fec.parity_count > MAX_TOTAL_SHARDS:
            return None
        if fec.parity_index >= fec.parity_count:
            return None
        lengths = tuple(fec.shard_lengths)
        longest = max(lengths)
        if min(lengths) < AEAD_TAG_SIZE or longest > self._max_shard_len:
            return None
        if len(fec.payload) != longest:
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
            scheme=scheme,
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

    def _try_recover_rs(self, group: _ParityGroup) -> list[tuple[int, bytes]]:
        """Reed-Solomon: rebuild every missing shard once at most as many are missing as
        parities arrived (any k of the k+m)."""
        if 0 in group.resolved_classes or not group.parities:
            return []
        first, lengths = group.first_packet_id, group.shard_lengths
        shards = self._shards
        missing = [i for i in range(len(lengths)) if first + i not in shards]
        if len(missing) > len(group.parities):
            return []
        group.resolved_classes.add(0)
        if not missing:
            return []
        present: dict[int, bytes] = {}
        for i, length in enumerate(lengths):
            stored = shards.get(first + i)
            if stored is None:
                continue
            if len(stored[0]) != length:
                self.stats.recovery_inconsistent += 1
                return []
            present[i] = stored[0]
        longest = max(lengths)
        data = rs_recover(len(lengths), group.parity_count, present, group.parities, longest)
        out: list[tuple[int, bytes]] = []
        for i in missing:
            shard = data[i]
            if any(shard[lengths[i] :]):
                self.stats.recovery_inconsistent += 1
                return []
            out.append((first + i, shard[: lengths[i]]))
        self.stats.recovered += len(out)
        if len(out) > 1:
            if len(self._rebuilding) > 1024:
                self._rebuilding.clear()
            self._rebuilding.update(pid for pid, _ in out)
        return out

    def _will_repair_rs(self, group: _ParityGroup, packet_id: int) -> bool:
        """Reed-Solomon: the group's parities in hand and still expected cover its losses. When
        they cannot, the ids past that many are requested (a resend of those, and the parities
        rebuild the rest)."""
        if 0 in group.resolved_classes:
            return False
        first = group.first_packet_id
        missing = [q for q in range(first, group.last_packet_id + 1) if q not in self._shards]
        capacity = len(group.parities)
        expected_by = group.last_packet_id + group.parity_count + _REORDER_SLACK_IDS
        if self._highest_id <= expected_by:
            capacity = group.parity_count
        return packet_id in missing[:capacity]

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
        if now < self._last_expire + _EXPIRE_EVERY_S:
            return  # expiry is housekeeping: once per few ms is plenty (sizes are capped apart)
        self._last_expire = now
        horizon = now - self._max_age
        shards = self._shards
        stale = 0
        for _, stored_at in shards.values():  # oldest first: count, then drop, the stale ones
            if stored_at >= horizon:
                break
            stale += 1
        for _ in range(stale):
            shards.popitem(last=False)
        carriers = self._carrier_ids
        stale = 0
        for stored_at in carriers.values():
            if stored_at >= horizon:
                break
            stale += 1
        for _ in range(stale):
            carriers.popitem(last=False)
        while self._groups:
            oldest = next(iter(self._groups.values()))  # dict order = creation order
            if oldest.created_at >= horizon:
                break
            self._remove_group(oldest.group_id)
