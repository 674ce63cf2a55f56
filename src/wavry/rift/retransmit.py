"""NACK-based loss repair (docs/spec/RIFT.md §7.3). Sans-I/O: time is always a ``now`` argument.

Sender side: :class:`RetransmitHistory` keeps the exact encrypted datagrams by packet id so a
NACKed datagram is resent byte for byte (same packet id, same nonce: not a nonce reuse).

Receiver side: :class:`NackTracker` finds gaps in the authenticated packet ids and says which ids
to request, at once for a new gap (unless FEC is expected to repair it), again after about one RTT
while the data is still useful, at most ``max_attempts`` times, at most 64 ids per ``Nack``.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wavry.rift import rift_pb2

MAX_IDS_PER_NACK = 64


class _StoredDatagram:
    """A sent datagram kept for resends (a plain class: one per datagram, see
    delta._SendRecord)."""

    __slots__ = ("datagram", "resends", "resent_at", "stored_at")

    def __init__(self, datagram: bytes, stored_at: float) -> None:
        self.datagram = datagram
        self.stored_at = stored_at
        self.resends = 0
        self.resent_at = -math.inf


@dataclass
class RetransmitStats:
    stored: int = 0
    resent: int = 0
    unknown: int = 0
    resend_limited: int = 0
    #: extra copies of re-requested datagrams (see :meth:`RetransmitHistory.resend`)
    duplicated: int = 0
    #: requests for an id resent less than `min_resend_interval` ago (a repeated Nack)
    repeated: int = 0
    #: requests for an id younger than the request could know of (`resend`'s `min_age`)
    premature: int = 0


class RetransmitHistory:
    """Recently sent datagrams, kept while younger than ``min_age`` seconds *or* among the last
    ``min_count`` (whichever keeps more), never more than ``max_count``.

    Store only datagrams worth resending (FEC parity datagrams need not be stored: NACKing the
    data ids is enough).
    """

    def __init__(
        self,
        *,
        min_age: float = 1.0,
        min_count: int = 4096,
        max_count: int = 65536,
        max_resends_per_packet: int = 4,
        min_resend_interval: float = 0.001,
    ) -> None:
        if not 0 < min_count <= max_count:
            raise ValueError("need 0 < min_count <= max_count")
        self._min_age = min_age
        self._min_count = min_count
        self._max_count = max_count
        self._max_resends = max_resends_per_packet
        self._min_resend_interval = min_resend_interval
        self._datagrams: OrderedDict[int, _StoredDatagram] = OrderedDict()
        #: `store` skips `expire` before this time (the oldest entry is younger than min_age)
        self._expire_at = -math.inf
        self.stats = RetransmitStats()

    def __len__(self) -> int:
        return len(self._datagrams)

    def __contains__(self, packet_id: object) -> bool:
        return packet_id in self._datagrams

    def store(self, packet_id: int, datagram: bytes, now: float) -> None:
        """Remember the complete datagram (header included) sent as ``packet_id``."""
        if packet_id in self._datagrams:
            return  # a retransmission: keep the original entry and its resend count
        datagrams = self._datagrams
        datagrams[packet_id] = _StoredDatagram(bytes(datagram), now)
        self.stats.stored += 1
        # runs for every datagram sent: the full check only when something may be due
        n = len(datagrams)
        if (n > self._min_count and now >= self._expire_at) or n > self._max_count:
            self.expire(now)

    def get(self, packet_id: int) -> bytes | None:
        entry = self._datagrams.get(packet_id)
        return entry.datagram if entry is not None else None

    def resend(
        self,
        packet_ids: Iterable[int],
        now: float,
        *,
        copies: bool = True,
        min_age: float = 0.0,
    ) -> list[bytes]:
        """Datagrams to send again for a received ``Nack`` (unknown ids are skipped; each id is
        resent at most ``max_resends_per_packet`` times; an id resent less than
        ``min_resend_interval`` ago is not sent again: the receiver repeats re-requests in a
        second ``Nack``, and both copies are answered once).

        With `copies`, an id asked for again (its first resend was lost as well) goes out
        twice: both copies carry the same bytes, the receiver drops the second as a replay. The
        copies follow the whole batch, so a loss burst that takes a resend is less likely to
        take its copy too. A frame whose resend is lost has waited about two RTTs already; a
        third request would come too late to spare the picture a freeze. (The transport asks
        for no copies while the path is congested: there a copy only lengthens the queue.)

        An id sent less than `min_age` ago is not resent (`premature`): a real loss is asked
        for a round trip after the datagram left at the earliest, so a request that fast was
        made before the datagram existed (a receiver that expected the rest of a frame the
        pacer then cut short) and the datagram is still on its way.
        """
        self.expire(now)
        out: list[bytes] = []
        extra: list[bytes] = []
        for packet_id in dict.fromkeys(packet_ids):
            entry = self._datagrams.get(packet_id)
            if entry is None:
                self.stats.unknown += 1
            elif now < entry.stored_at + min_age:
                self.stats.premature += 1
            elif now < entry.resent_at + self._min_resend_interval:
                self.stats.repeated += 1
            elif entry.resends >= self._max_resends:
                self.stats.resend_limited += 1
            else:
                entry.resends += 1
                entry.resent_at = now
                self.stats.resent += 1
                out.append(entry.datagram)
                if copies and entry.resends > 1:
                    extra.append(entry.datagram)
        self.stats.duplicated += len(extra)
        return out + extra

    def expire(self, now: float) -> None:
        datagrams = self._datagrams
        while len(datagrams) > self._max_count:
            datagrams.popitem(last=False)
        while len(datagrams) > self._min_count:
            oldest = next(iter(datagrams.values()))
            if now <= oldest.stored_at + self._min_age:
                # nothing is due before the oldest entry turns min_age old
                self._expire_at = oldest.stored_at + self._min_age
                return
            datagrams.popitem(last=False)
        self._expire_at = -math.inf


class MissingState(enum.Enum):
    HELD_FOR_FEC = "held_for_fec"
    REQUESTED = "requested"


@dataclass
class _MissingPacket:
    missed_at: float
    state: MissingState = MissingState.HELD_FOR_FEC
    requested_at: float = 0.0
    attempts: int = 0
    #: named by `expect_through` before any datagram showed it missing
    inferred: bool = False


@dataclass
class NackStats:
    ids_requested: int = 0
    ids_rerequested: int = 0
    #: re-requested ids sent in a second message too
    repeated_ids: int = 0
    held_for_fec: int = 0
    arrived_after_request: int = 0
    arrived_unrequested: int = 0
    expired: int = 0
    gave_up: int = 0
    resets: int = 0
    not_needed: int = 0
    #: ids requested before any later datagram showed them missing (`expect_through`)
    tail_ids: int = 0


WillRepair = Callable[[int], bool]


class NackTracker:
    """Receiver-side gap detection over packet ids.

    Call :meth:`on_packet` for every authenticated datagram (after the FEC decoder saw it, so that
    ``will_repair`` is up to date), :meth:`poll` at :meth:`next_timer` and after FEC state changed
    (a parity arrived). Both return batches of at most 64 ids, one ``Nack`` message each.
    """

    def __init__(
        self,
        *,
        rtt: float = 0.05,
        max_age: float = 0.3,
        max_attempts: int = 3,
        fec_hold: float = 0.005,
        fec_hold_max: float = 0.05,
        rerequest_rtt_factor: float = 1.25,
        min_rerequest_interval: float = 0.002,
        max_gap: int = 1024,
        max_missing: int = 4096,
        will_repair: WillRepair | None = None,
        first_expected_id: int = 1,
        not_needed: WillRepair | None = None,
    ) -> None:
        if max_attempts < 1 or max_gap < 1 or max_missing < 1:
            raise ValueError("max_attempts, max_gap and max_missing must be positive")
        self._rtt = rtt
        self._max_age = max_age
        self._max_attempts = max_attempts
        self._fec_hold = fec_hold
        self._fec_hold_max = fec_hold_max
        self._rerequest_factor = rerequest_rtt_factor
        self._min_rerequest = min_rerequest_interval
        self._max_gap = max_gap
        self._max_missing = max_missing
        self._will_repair = will_repair
        #: ids never worth requesting (e.g. lost FEC parities: the sender does not keep them)
        self._not_needed = not_needed
        self._highest = first_expected_id - 1
        #: the highest id that really arrived (`_highest` also covers `expect_through`)
        self._arrived_max = first_expected_id - 1
        self._missing: OrderedDict[int, _MissingPacket] = OrderedDict()
        self._next_due: float | None = None
        #: ids that arrived ahead of the in-order media lane (priority-lane messages)
        self._ahead: set[int] = set()
        #: when the last in-order (media lane) datagram arrived: a held id waits for its parity
        #: while the lane still delivers (see `_scan`)
        self._last_arrival = -math.inf
        #: whether an id may be held for FEC (a stale True costs one extra scan)
        self._holding = False
        #: re-requested ids, sent in a second message as well (see `_out`)
        self._repeat: list[int] = []
        self.stats = NackStats()

    @property
    def highest_packet_id(self) -> int:
        return self._highest

    @property
    def missing_ids(self) -> list[int]:
        return sorted(self._missing)

    @property
    def rtt(self) -> float:
        """The RTT re-requests are spaced by."""
        return self._rtt

    def set_rtt(self, rtt: float) -> None:
        self._rtt = max(0.0, rtt)

    def set_will_repair(self, will_repair: WillRepair | None) -> None:
        self._will_repair = will_repair

    def on_packet(
        self, packet_id: int, now: float, *, reveals_gaps: bool = True
    ) -> list[list[int]]:
        """Note an authenticated datagram; returns NACK batches to send now.

        `reveals_gaps=False` is for datagrams of the sender's priority lane (control, input,
        audio): they may overtake media the sender sealed earlier but still paces, so the ids
        they skip are not missing yet. Such an id is remembered and only the in-order lane
        (video chunks, FEC) advances the gap detection.
        """
        if reveals_gaps:
            self._last_arrival = now
        if (
            packet_id == self._highest + 1
            and not self._holding
            and (self._next_due is None or now < self._next_due)
        ):
            self._highest = self._arrived_max = packet_id  # in-order fast path: nothing due
            if self._ahead:
                self._absorb_ahead()
            return []
        if not reveals_gaps and packet_id > self._highest + 1:
            if len(self._ahead) < self._max_missing:
                self._ahead.add(packet_id)
            if self._next_due is not None and now >= self._next_due:
                return self._out(self._scan(now))
            return []
        requested: list[int] = []
        if packet_id > self._arrived_max:
            self._arrived_max = packet_id
        if packet_id > self._highest:
            gap = packet_id - self._highest - 1
            if gap > self._max_gap:
                self.stats.resets += 1
                self._missing.clear()
                self._holding = False
            else:
                ahead = self._ahead
                for missing_id in range(self._highest + 1, packet_id):
                    if ahead and missing_id in ahead:
                        ahead.discard(missing_id)
                        continue
                    if self._not_needed is not None and self._not_needed(missing_id):
                        self.stats.not_needed += 1
                        continue
                    self._missing[missing_id] = entry = _MissingPacket(missed_at=now)
                    self._decide_first(missing_id, entry, now, requested)
                    self._fold_due(self._due_at(entry))
                self._trim_missing()
            self._highest = packet_id
            if self._ahead:
                self._absorb_ahead()
        else:
            late = self._missing.pop(packet_id) if packet_id in self._missing else None
            if late is not None and late.state is MissingState.REQUESTED:
                self.stats.arrived_after_request += 1
            elif late is not None:
                self.stats.arrived_unrequested += 1
        if self._holding or (self._next_due is not None and now >= self._next_due):
            requested += self._scan(now)
        return self._out(requested)

    @property
    def last_arrival(self) -> float:
        """When the in-order (media) lane last delivered a datagram."""
        return self._last_arrival

    @property
    def fec_hold(self) -> float:
        return self._fec_hold

    def expect_through(self, last_id: int, now: float) -> list[list[int]]:
        """The in-order lane should have delivered every id up to `last_id` by now; returns
        NACK batches for those above the highest seen, requested at once.

        Gaps are otherwise revealed by a later datagram. When a loss burst takes the end of a
        frame together with its parities, no later datagram comes until the next frame, a
        frame interval later: the receiver would sit on a frame it knows to be incomplete (its
        chunk count says so) for 17 ms before asking. The caller knows how many chunks are
        still to come and that the lane went quiet; the ids it names are then missing like any
        other (given up after `max_attempts`, dropped when it arrives), except that one is
        asked for again only once a later id has really arrived: a frame the sender cut short
        (its pacer dropped the stale rest) never had those ids, and the sender gives them to
        its next datagrams; a re-request then would have them sent twice.
        """
        if last_id <= self._highest or last_id - self._highest > self._max_gap:
            return []
        requested: list[int] = []
        ahead = self._ahead
        for missing_id in range(self._highest + 1, last_id + 1):
            if ahead and missing_id in ahead:
                ahead.discard(missing_id)
                continue
            self._missing[missing_id] = entry = _MissingPacket(missed_at=now, inferred=True)
            # no hold for FEC: the lane is quiet, so this group's parities were lost too
            self._request(missing_id, entry, now, requested)
            self._fold_due(self._due_at(entry))
        self._trim_missing()
        self._highest = last_id
        if ahead:
            self._absorb_ahead()
        self.stats.tail_ids += len(requested)
        return self._out(requested)

    def _trim_missing(self) -> None:
        """At most `max_missing` ids are tracked: the oldest go first."""
        while len(self._missing) > self._max_missing:
            self._missing.popitem(last=False)
            self.stats.expired += 1

    def _absorb_ahead(self) -> None:
        ahead = self._ahead
        while self._highest + 1 in ahead:
            self._highest += 1
            ahead.discard(self._highest)
        if ahead and min(ahead) <= self._highest:
            self._ahead = {i for i in ahead if i > self._highest}

    def poll(self, now: float) -> list[list[int]]:
        """Re-requests and FEC holds that are due; call at :meth:`next_timer`."""
        return self._out(self._scan(now))

    def next_timer(self) -> float | None:
        return self._next_due

    def _out(self, requested: list[int]) -> list[list[int]]:
        """Batches for `requested`, then the re-requested ids once more in batches of their own.

        A re-request means the first request or its answer was lost. On a path that loses
        bursts the sparse reverse direction loses runs of several datagrams (a 12-datagram run
        took a NACK and both re-requests in `burst-3pct`), so a re-request goes out in two
        messages; the sender resends an id once for both (`RetransmitHistory`).
        """
        batches = _batches(requested)
        repeat = self._repeat
        if repeat:
            self._repeat = []
            batches += _batches(repeat)
            self.stats.repeated_ids += len(repeat)
        return batches

    def _decide_first(
        self, packet_id: int, entry: _MissingPacket, now: float, requested: list[int]
    ) -> None:
        if self._will_repair is not None and self._will_repair(packet_id):
            self.stats.held_for_fec += 1
            self._holding = True
            return
        self._request(packet_id, entry, now, requested)

    def _request(
        self, packet_id: int, entry: _MissingPacket, now: float, requested: list[int]
    ) -> None:
        if entry.attempts:
            self.stats.ids_rerequested += 1
            self._repeat.append(packet_id)
        else:
            self.stats.ids_requested += 1
        entry.state = MissingState.REQUESTED
        entry.requested_at = now
        entry.attempts += 1
        requested.append(packet_id)

    def _rerequest_interval(self) -> float:
        return max(self._min_rerequest, self._rtt * self._rerequest_factor)

    def _due_at(self, entry: _MissingPacket) -> float:
        if entry.state is MissingState.HELD_FOR_FEC:
            return min(
                self._last_arrival + self._fec_hold,
                entry.missed_at + min(self._fec_hold_max, self._max_age),
            )
        if entry.attempts >= self._max_attempts:
            return entry.requested_at + self._rerequest_interval()  # then give up
        return min(entry.requested_at + self._rerequest_interval(), entry.missed_at + self._max_age)

    def _scan(self, now: float) -> list[int]:
        requested: list[int] = []
        next_due: float | None = None
        rerequest_interval = self._rerequest_interval()
        # The hold for a parity lasts while the media lane still delivers: on a slow link a
        # group's parities arrive well after the gap (12 datagrams take 14 ms at 8 Mbit/s), and
        # requesting earlier resends what FEC repairs anyway, into the congested queue. It ends
        # when the lane has been idle for `fec_hold` (the parities were lost with the frame's
        # tail), when `will_repair` turns false (the ids passed the parity: it was lost), or
        # after `fec_hold_max`.
        idle = now >= self._last_arrival + self._fec_hold
        holding = False
        for packet_id, entry in list(self._missing.items()):
            if now >= entry.missed_at + self._max_age:
                del self._missing[packet_id]
                self.stats.expired += 1
                continue
            if entry.state is MissingState.HELD_FOR_FEC:
                hold_over = idle or now >= entry.missed_at + self._fec_hold_max
                if hold_over or self._will_repair is None or not self._will_repair(packet_id):
                    self._request(packet_id, entry, now, requested)
                else:
                    holding = True
            elif now >= entry.requested_at + rerequest_interval:
                still_useful = now + self._rtt <= entry.missed_at + self._max_age
                if entry.attempts >= self._max_attempts or not still_useful:
                    del self._missing[packet_id]
                    self.stats.gave_up += 1
                    continue
                if entry.inferred and packet_id > self._arrived_max:
                    entry.requested_at = now  # not known to exist yet (expect_through)
                elif self._will_repair is None or not self._will_repair(packet_id):
                    self._request(packet_id, entry, now, requested)
                else:
                    entry.requested_at = now  # FEC can repair it now; check again later
            due = self._due_at(entry)
            next_due = due if next_due is None else min(next_due, due)
        self._next_due = next_due
        self._holding = holding
        return requested

    def _fold_due(self, due: float) -> None:
        self._next_due = due if self._next_due is None else min(self._next_due, due)


def _batches(packet_ids: list[int]) -> list[list[int]]:
    if not packet_ids:
        return []
    ids = sorted(packet_ids)
    return [ids[i : i + MAX_IDS_PER_NACK] for i in range(0, len(ids), MAX_IDS_PER_NACK)]


def nack_messages(batches: list[list[int]]) -> list[rift_pb2.Nack]:
    """One ``Nack`` per batch."""
    return [rift_pb2.Nack(packet_ids=batch) for batch in batches]
