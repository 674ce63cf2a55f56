"""A host's view of one client session, its counters, and path validation (docs/spec/RIFT.md
§3): when authentic datagrams arrive from a new address, media moves there only after a Ping
sent there is answered from there."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from enum import Enum

from wavry.rift import rift_pb2
from wavry.rift.admission import AdmissionCounters
from wavry.rift.channel import SecureChannel
from wavry.rift.config import HostConfig, TimingConfig
from wavry.rift.events import Address, ClientMigrated, HostEvent
from wavry.rift.pairing import PairingVerdict
from wavry.rift.transport import HostTransport, TransportConfig

__all__ = [
    "MAX_STREAM_SIDE",
    "MIN_STREAM_SIDE",
    "HostCounters",
    "HostSession",
    "HostSessionState",
    "PathChallenge",
    "PathValidation",
    "UntrustedSessions",
    "datagram_sizes",
    "pair_result",
    "stream_size",
]

MIN_STREAM_SIDE, MAX_STREAM_SIDE = 64, 8192  # pixels


class HostSessionState(Enum):
    AWAITING_HELLO = "awaiting_hello"
    PAIRING = "pairing"
    ACTIVE = "active"


@dataclass
class PathChallenge:
    """A new source address that delivered authentic datagrams, waiting for its Pong."""

    addr: Address
    value: int  # the Ping's timestamp_us the Pong must echo
    sent_at: float


@dataclass
class HostSession:
    alias: int
    client_id: str
    client_name: str
    channel: SecureChannel
    transport: HostTransport
    addr: Address
    handshake_hash: bytes
    established_at: float
    last_rx: float
    state: HostSessionState = HostSessionState.AWAITING_HELLO
    hello: rift_pb2.Hello | None = None
    ack: rift_pb2.HelloAck | None = None
    stalled: bool = False
    extra: dict[str, object] = field(default_factory=dict)
    source: Hashable = None  # what the untrusted-session bounds count (source_key of addr)
    wait_until: float = 0.0  # not accepted by then: freed (hello_wait_s, pairing_wait_s)
    addr_rx: float = 0.0  # last authentic datagram from `addr`
    path: PathChallenge | None = None


@dataclass
class HostCounters(AdmissionCounters):
    framing_drops: int = 0
    unknown_alias: int = 0
    handshakes_completed: int = 0
    untrusted_evicted: int = 0  # sessions not accepted yet, replaced by newer ones (bounds)
    untrusted_expired: int = 0  # ... freed for waiting too long for Hello or pairing
    path_challenges: int = 0
    migrations: int = 0
    unvalidated_migrations: int = 0  # moved without a Pong: the old path stayed silent


class UntrustedSessions:
    """Sessions not accepted yet, oldest first, with the source address each counts under."""

    def __init__(self) -> None:
        self._by_alias: OrderedDict[int, Hashable] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_alias)

    def add(self, alias: int, source: Hashable) -> None:
        self._by_alias[alias] = source

    def discard(self, alias: int) -> None:
        self._by_alias.pop(alias, None)

    def victims(self, source: Hashable, per_source: int, total: int) -> list[tuple[int, Hashable]]:
        """Which sessions to replace so that one more from `source` keeps both bounds: the
        oldest of that source, then the oldest of all."""
        same = [a for a, src in self._by_alias.items() if src == source]
        chosen = same[: max(0, len(same) - per_source + 1)]
        extra = len(self._by_alias) - len(chosen) - total + 1
        if extra > 0:
            chosen += [a for a in self._by_alias if a not in chosen][:extra]
        return [(a, self._by_alias[a]) for a in chosen]


def pair_result(verdict: str, left: int) -> rift_pb2.PairResult:
    """The host's answer to a PairRequest (docs/spec/RIFT.md §4 step 4)."""
    if verdict == PairingVerdict.OK:
        return rift_pb2.PairResult(ok=True, message="paired: this host now trusts you")
    if verdict == PairingVerdict.WRONG:
        text = (
            f"wrong code; {left} attempts left"
            if left
            else "wrong code; the code is used up, ask the host for a new one"
        )
        return rift_pb2.PairResult(ok=False, message=text)
    if verdict == PairingVerdict.LIMITED:
        return rift_pb2.PairResult(
            ok=False, message="too many wrong codes lately; wait a minute and try again"
        )
    return rift_pb2.PairResult(
        ok=False, message="no pairing code is active on the host; ask for a new one"
    )


def datagram_sizes(cfg: HostConfig, limit: int | None) -> tuple[int, TransportConfig]:
    """A new session's maximum datagram size and transport settings, within the carrier's
    `limit` for its address (RIFT.md §11; None: the config's)."""
    tconfig, max_datagram = cfg.transport, cfg.max_datagram
    if limit is not None and limit < max(max_datagram, tconfig.max_datagram):
        max_datagram = min(max_datagram, limit)
        tconfig = replace(tconfig, max_datagram=min(tconfig.max_datagram, limit))
    return max_datagram, tconfig


def stream_size(cfg: HostConfig, hello: rift_pb2.Hello) -> tuple[int, int]:
    """The stream's even width and height for this client (docs/spec/RIFT.md §4)."""
    width, height = cfg.width, cfg.height
    wanted = hello.max_resolution
    if cfg.follow_client_size and wanted.width and wanted.height:
        # a display made for this client: its size, within what a display can be
        width = min(max(wanted.width, MIN_STREAM_SIDE), MAX_STREAM_SIDE)
        height = min(max(wanted.height, MIN_STREAM_SIDE), MAX_STREAM_SIDE)
    elif hello.HasField("max_resolution") and hello.max_resolution.width:
        scale = min(
            1.0,
            hello.max_resolution.width / width,
            (hello.max_resolution.height or height) / height,
        )
        width, height = int(width * scale), int(height * scale)
    return max(2, width - width % 2), max(2, height - height % 2)


class PathValidation:
    """Address changes of host sessions: challenge the new path, move when it answers."""

    def __init__(
        self,
        timing: TimingConfig,
        counters: HostCounters,
        random_bytes: Callable[[int], bytes],
        emit: Callable[[bytes, Address], None],
        event: Callable[[HostEvent], None],
    ) -> None:
        self.timing = timing
        self.counters = counters
        self._random = random_bytes
        self._emit = emit
        self._event = event

    def on_new_path(self, s: HostSession, addr: Address, now: float) -> None:
        """Authentic datagrams from a new address: media moves there once a Ping sent there is
        answered from there. A copy of an authentic datagram raced from a forged source (an
        on-path attacker) cannot answer, so the stream is not redirected. A client that never
        answers host Pings still moves once its old address stayed silent for a while."""
        t = self.timing
        p = s.path
        if p is None or p.addr != addr or now >= p.sent_at + t.path_challenge_every_s:
            self.challenge(s, addr, now)
        if now >= s.addr_rx + t.unvalidated_move_after_s:
            self.counters.unvalidated_migrations += 1
            self._move(s, addr, now)

    def challenge(self, s: HostSession, addr: Address, now: float) -> None:
        value = int.from_bytes(self._random(8), "big") | 1
        s.path = PathChallenge(addr, value, now)
        self.counters.path_challenges += 1
        # what is queued for the current path leaves first, then the Ping goes to the new path
        # only: a copy on the current path would reach a client with two paths (a relay and a
        # direct one) there first, and its answer from the current path would refuse the move.
        # A forged address gains nothing either way: it cannot open the Ping to answer it.
        for d in s.transport.take_output(now):
            self._emit(d, s.addr)
        ping = rift_pb2.Ping(timestamp_us=value)
        pid = s.transport.send_message(
            rift_pb2.Message(control=rift_pb2.ControlMessage(ping=ping)), now
        )
        for d in s.transport.take_output(now):
            self._emit(d, addr if int.from_bytes(d[8:16], "big") == pid else s.addr)

    def on_pong(self, s: HostSession, pong: rift_pb2.Pong, addr: Address, now: float) -> bool:
        """Whether this Pong answered a path challenge (and is consumed here)."""
        p = s.path
        if p is None or pong.timestamp_us != p.value:
            return False
        if addr == p.addr:
            self._move(s, addr, now)
        elif addr == s.addr:
            s.path = None  # the client answered from where it was: the new address was not it
        return True

    def _move(self, s: HostSession, addr: Address, now: float) -> None:
        old, s.addr, s.addr_rx, s.path = s.addr, addr, now, None
        self.counters.migrations += 1
        self._event(ClientMigrated(s.alias, old, addr))
