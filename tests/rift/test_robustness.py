"""docs/spec/RIFT.md §1–§3 and §12: every decoder drops (never crashes on) hostile datagrams.

Property tests drive an ESTABLISHED ClientSession + HostEndpoint pair (built with Loopback on a
fake clock) with truncated, oversized, wrong-magic, wrong-version, wrong-CRC, garbage, tampered,
replayed and unauthenticated datagrams, and check that each one produces no datagram, no event
and no state change. Plus the protobuf layer, the handshake decoders, and the passive-observer
property that motivated the Appendix: keys derived from the (public) handshake hash the way the
reference Rust implementation did must not open our transport packets; ours are Noise Split().
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.framing import (
    DEFAULT_MAX_DATAGRAM,
    FramingError,
    HandshakeDatagram,
    TransportDatagram,
    crc16_kermit,
    encode_handshake_header,
    encode_transport_header,
    parse_datagram,
)
from wavry.rift.host import HostEndpoint, HostSessionState
from wavry.rift.identity import Identity
from wavry.rift.noise import NoiseXX
from wavry.rift.testing.loopback import Loopback

T0 = 1000.0
T1 = 1001.0  # when hostile datagrams arrive
CLIENT_ADDR = ("10.0.0.2", 50000)
ATTACKER_ADDR = ("203.0.113.9", 40000)
MAX = DEFAULT_MAX_DATAGRAM
PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2s"
LABEL_I2R = b"wavrykdf-initiator-to-responder0"
LABEL_R2I = b"wavrykdf-responder-to-initiator0"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "noise"

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# X25519 public values whose shared secret is all zeros (RFC 7748 §6.1 low-order points and
# their non-canonical encodings).
LOW_ORDER_POINTS = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    b"\xec" + b"\xff" * 30 + b"\x7f",
    b"\xed" + b"\xff" * 30 + b"\x7f",
    b"\xee" + b"\xff" * 30 + b"\x7f",
]
LOW_ORDER = set(LOW_ORDER_POINTS)


# ---- an established session -------------------------------------------------------------


@dataclass
class Env:
    lb: Loopback
    host: HostEndpoint
    client: ClientSession
    alias: int
    c2h: list[bytes]  # every datagram the host has received (all delivered)
    h2c: list[bytes]  # every datagram the client has received
    ping: bytes  # a Ping datagram the host already answered
    seed: int

    @property
    def c2h_transport(self) -> list[bytes]:
        return [d for d in self.c2h if isinstance(parse_datagram(d), TransportDatagram)]

    @property
    def h2c_transport(self) -> list[bytes]:
        return [d for d in self.h2c if isinstance(parse_datagram(d), TransportDatagram)]


def make_env(seed: int = 0, established: bool = True) -> Env:
    rnd = random.Random(seed)
    host = HostEndpoint(
        Identity.from_private_bytes(rnd.randbytes(32)),
        HostConfig(trust_any=True),
        random_bytes=rnd.randbytes,
        static_private=rnd.randbytes(32),
    )
    client = ClientSession(
        Identity.from_private_bytes(rnd.randbytes(32)),
        ClientConfig(),
        random_bytes=rnd.randbytes,
        static_private=rnd.randbytes(32),
    )
    lb = Loopback(client, host, client_addr=CLIENT_ADDR)
    client.connect(T0)
    if not established:
        return Env(lb, host, client, 0, lb.to_host, lb.to_client, b"", seed)
    lb.pump(T0)
    assert client.state is ClientState.ACTIVE
    assert client.channel is not None
    n = len(lb.to_host)
    ts = client.ping(T0 + 0.5)
    lb.pump(T0 + 0.5)
    ping = lb.to_host[n]
    # the session's first Pong answers the Ping sent on acceptance
    assert [e.timestamp_us for e in lb.client_events if isinstance(e, ev.PongReceived)][-1:] == [ts]
    assert not client.datagrams_to_send() and not host.datagrams_to_send()
    assert client.next_event() is None and host.next_event() is None
    return Env(lb, host, client, client.channel.alias, lb.to_host, lb.to_client, ping, seed)


def snapshot(env: Env) -> dict[str, Any]:
    host, client = env.host, env.client
    sessions = {}
    for alias, s in host.sessions.items():
        ch = s.channel
        sessions[alias] = (
            s.state,
            s.addr,
            s.last_rx,
            s.stalled,
            ch.counters.received,
            ch._replay.highest,
            ch.next_packet_id,
        )
    ch = client.channel
    return {
        "sessions": sessions,
        "pending": host.pending_handshakes,
        "client_state": client.state,
        "client_channel": id(ch),
        "client_received": ch.counters.received if ch else None,
        "client_highest": ch._replay.highest if ch else None,
        "client_next_id": ch.next_packet_id if ch else None,
    }


def assert_no_effect(env: Env, before: dict[str, Any]) -> None:
    assert env.host.datagrams_to_send() == []
    assert env.client.datagrams_to_send() == []
    assert env.host.next_event() is None
    assert env.client.next_event() is None
    assert snapshot(env) == before


def host_drop_count(env: Env) -> int:
    c = env.host.counters
    total = c.framing_drops + c.unknown_alias + c.handshakes_failed
    for s in env.host.sessions.values():
        k = s.channel.counters
        total += k.replayed + k.auth_failed + k.malformed
    return total


def client_drop_count(env: Env) -> int:
    ch = env.client.channel
    assert ch is not None
    k = ch.counters
    return env.client.drops + k.replayed + k.auth_failed + k.malformed


# ---- hostile datagram construction -------------------------------------------------------


def fix_crc(d: bytes) -> bytes:
    """Recompute the header CRC (transport or handshake, by bytes 4..8) of a datagram."""
    if d[4:8] == bytes(4) and len(d) >= 30:
        return d[:28] + crc16_kermit(d[:28]).to_bytes(2, "big") + d[30:]
    return d[:16] + crc16_kermit(d[:16]).to_bytes(2, "big") + d[18:]


def crc_offset(d: bytes) -> int:
    return 28 if d[4:8] == bytes(4) and len(d) >= 30 else 16


def hostile(valid: list[bytes], transport: list[bytes], alias: int) -> st.SearchStrategy:
    """(kind, datagram) pairs derived from the datagrams a side has already accepted."""
    any_valid = st.sampled_from(valid)
    one_transport = st.sampled_from(transport)

    truncated = any_valid.flatmap(
        lambda d: st.integers(0, len(d) - 1).map(lambda n: ("truncated", d[:n]))
    )
    oversized = st.tuples(any_valid, st.binary(min_size=MAX + 1, max_size=MAX + 700)).map(
        lambda t: ("oversized", t[0] + t[1][len(t[0]) :])
    )
    bad_magic = st.tuples(any_valid, st.binary(min_size=2, max_size=2)).filter(
        lambda t: t[1] != b"RI"
    )
    bad_magic = bad_magic.map(lambda t: ("bad_magic", fix_crc(t[1] + t[0][2:])))
    bad_version = st.tuples(any_valid, st.integers(0, 0xFFFF).filter(lambda v: v != 1)).map(
        lambda t: ("bad_version", fix_crc(t[0][:2] + struct.pack(">H", t[1]) + t[0][4:]))
    )

    def flip_crc(t: tuple[bytes, int]) -> tuple[str, bytes]:
        d, delta = t
        o = crc_offset(d)
        crc = int.from_bytes(d[o : o + 2], "big") ^ delta
        return "bad_crc", d[:o] + crc.to_bytes(2, "big") + d[o + 2 :]

    bad_crc = st.tuples(any_valid, st.integers(1, 0xFFFF)).map(flip_crc)
    garbage = st.binary(max_size=MAX + 200).map(lambda b: ("garbage", b))

    def tamper(t: tuple[bytes, int]) -> tuple[str, bytes]:
        d, bit = t
        flipped = bytearray(d)
        flipped[bit // 8] ^= 1 << (bit % 8)
        out = bytes(flipped)
        if bit < 16 * 8:  # a header field: fix the CRC so it reaches the AEAD
            out = out[:16] + crc16_kermit(out[:16]).to_bytes(2, "big") + out[18:]
        return "tampered", out

    tampered = one_transport.flatmap(
        lambda d: st.integers(0, len(d) * 8 - 1).map(lambda bit: tamper((d, bit)))
    )
    replayed = any_valid.map(lambda d: ("replayed", d))
    unauthenticated = st.tuples(
        st.one_of(st.integers(0, 64), st.integers(0, 2**64 - 1)),
        st.binary(max_size=MAX - 18),
    ).map(lambda t: ("unauthenticated", encode_transport_header(alias, t[0]) + t[1]))
    return st.one_of(
        truncated,
        oversized,
        bad_magic,
        bad_version,
        bad_crc,
        garbage,
        tampered,
        replayed,
        unauthenticated,
    )


# ---- framing decoder ---------------------------------------------------------------------


def near_valid_headers() -> st.SearchStrategy[bytes]:
    """Byte strings that start like RIFT datagrams, CRC right or wrong, to reach deep checks."""
    body = st.tuples(
        st.sampled_from([b"RI", b"RJ", b"\x00\x00"]),
        st.sampled_from([b"\x00\x01", b"\x00\x02", b"\x01\x00"]),
        st.one_of(st.just(bytes(4)), st.binary(min_size=4, max_size=4)),
        st.binary(min_size=0, max_size=60),
        st.booleans(),
    )

    def build(t: tuple[bytes, bytes, bytes, bytes, bool]) -> bytes:
        d = t[0] + t[1] + t[2] + t[3]
        return fix_crc(d) if t[4] and len(d) >= 18 else d

    return body.map(build)


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=3000), near_valid_headers()),
    max_size=st.sampled_from([1200, 1400, 65507]),
)
def test_parse_datagram_raises_only_framing_error(data: bytes, max_size: int) -> None:
    try:
        d = parse_datagram(data, max_size)
    except FramingError:
        return
    assert 18 <= len(data) <= max_size
    assert data[:4] == b"RI\x00\x01"
    if isinstance(d, HandshakeDatagram):
        assert data[4:8] == bytes(4) and len(data) >= 30
        assert d.message_number in (1, 2, 3)
        assert d.header + d.payload == data and len(d.handshake_id) == 12
        assert crc16_kermit(data[:28]) == int.from_bytes(data[28:30], "big")
    else:
        assert d.alias != 0
        assert d.header + d.payload == data and len(d.header) == 18
        assert crc16_kermit(data[:16]) == int.from_bytes(data[16:18], "big")


# ---- established session: the host side -------------------------------------------------


@FUZZ
@given(data=st.data())
def test_host_drops_hostile_datagrams_without_effect(data: st.DataObject) -> None:
    env = make_env(seed=data.draw(st.integers(0, 3), label="seed"))
    kind, dgram = data.draw(hostile(env.c2h, env.c2h_transport, env.alias), label="datagram")
    addr = data.draw(st.sampled_from([CLIENT_ADDR, ATTACKER_ADDR]), label="addr")
    event(kind)
    note(f"{kind}: {dgram.hex()}")
    before, drops = snapshot(env), host_drop_count(env)
    env.host.receive_datagram(dgram, addr, T1)
    assert_no_effect(env, before)
    # Every drop is counted exactly once; only stale handshake datagrams are ignored silently.
    try:
        silent = isinstance(parse_datagram(dgram), HandshakeDatagram)
    except FramingError:
        silent = False
    assert host_drop_count(env) == drops + (0 if silent else 1)


@FUZZ
@given(data=st.data())
def test_client_drops_hostile_datagrams_without_effect(data: st.DataObject) -> None:
    env = make_env(seed=data.draw(st.integers(0, 3), label="seed"))
    kind, dgram = data.draw(hostile(env.h2c, env.h2c_transport, env.alias), label="datagram")
    event(kind)
    note(f"{kind}: {dgram.hex()}")
    before, drops = snapshot(env), client_drop_count(env)
    env.client.receive_datagram(dgram, T1)
    assert_no_effect(env, before)
    assert client_drop_count(env) == drops + 1  # every drop is counted exactly once


def _framing_cases(env: Env) -> dict[str, bytes]:
    d = env.ping
    crc = int.from_bytes(d[16:18], "big")
    return {
        "empty": b"",
        "17 bytes": d[:17],
        "oversized": d + bytes(MAX + 1 - len(d)),
        "bad magic": fix_crc(b"RJ" + d[2:]),
        "bad version": fix_crc(d[:2] + b"\x00\x02" + d[4:]),
        "bad crc": d[:16] + (crc ^ 1).to_bytes(2, "big") + d[18:],
        "zero alias, 29 bytes": fix_crc(d[:4] + bytes(4) + d[8:])[:29],
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "17 bytes",
        "oversized",
        "bad magic",
        "bad version",
        "bad crc",
        "zero alias, 29 bytes",
    ],
)
def test_framing_drops_are_counted(case: str) -> None:
    env = make_env()
    dgram = _framing_cases(env)[case]
    before = snapshot(env)
    drops = env.host.counters.framing_drops
    env.host.receive_datagram(dgram, CLIENT_ADDR, T1)
    assert_no_effect(env, before)
    assert env.host.counters.framing_drops == drops + 1
    cdrops = env.client.drops
    env.client.receive_datagram(dgram, T1)
    assert_no_effect(env, before)
    assert env.client.drops == cdrops + 1


def test_tampered_payload_fails_tag_and_changes_nothing() -> None:
    env = make_env()
    s = env.host.sessions[env.alias]
    for i in range(18, len(env.ping)):
        d = bytearray(env.ping)
        d[i] ^= 0x80
        before = snapshot(env)
        failed = s.channel.counters.auth_failed
        env.host.receive_datagram(bytes(d), ATTACKER_ADDR, T1)
        assert_no_effect(env, before)
        # The Ping's id is already marked, so a tampered copy must not even reach the AEAD...
        assert s.channel.counters.auth_failed == failed
    # ... while a tampered *future* datagram reaches it and fails the tag, changing nothing.
    pid, fresh = env.client.channel.seal(  # type: ignore[union-attr]
        rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=7)))
    )
    assert pid > s.channel._replay.highest
    for i in range(len(fresh)):
        d = bytearray(fresh)
        d[i] ^= 0x01
        if i < 16:
            d[16:18] = crc16_kermit(bytes(d[:16])).to_bytes(2, "big")
        before = snapshot(env)
        env.host.receive_datagram(bytes(d), ATTACKER_ADDR, T1)
        assert_no_effect(env, before)
    assert s.channel.counters.auth_failed >= len(fresh) - 18
    # The untampered original still works afterwards: failed tags left the window alone.
    env.host.receive_datagram(fresh, CLIENT_ADDR, T1)
    out = env.host.datagrams_to_send()
    assert len(out) == 1
    env.client.receive_datagram(out[0][0], T1)
    assert s.channel._replay.highest == pid


def test_unauthenticated_future_id_does_not_move_replay_window() -> None:
    env = make_env()
    s = env.host.sessions[env.alias]
    for pid in (s.channel._replay.highest + 1, 10_000, 2**63 - 1, 2**64 - 1):
        before = snapshot(env)
        env.host.receive_datagram(
            encode_transport_header(env.alias, pid) + bytes(40), ATTACKER_ADDR, T1
        )
        assert_no_effect(env, before)
    unknown = env.host.counters.unknown_alias
    env.host.receive_datagram(
        encode_transport_header(env.alias ^ 0x5A5A5A5A, 99) + bytes(40), CLIENT_ADDR, T1
    )
    assert env.host.counters.unknown_alias == unknown + 1
    # Still serving: a genuine Ping is answered.
    n = len(env.lb.client_events)
    ts = env.client.ping(T1)
    env.lb.pump(T1)
    pongs = [e for e in env.lb.client_events[n:] if isinstance(e, ev.PongReceived)]
    assert [p.timestamp_us for p in pongs] == [ts]


@pytest.mark.parametrize("addr", [CLIENT_ADDR, ATTACKER_ADDR])
def test_replayed_ping_is_not_answered(addr: tuple[str, int]) -> None:
    env = make_env()
    s = env.host.sessions[env.alias]
    replayed = s.channel.counters.replayed
    for _ in range(3):
        before = snapshot(env)
        env.host.receive_datagram(env.ping, addr, T1)
        assert env.host.datagrams_to_send() == []  # no Pong
        assert_no_effect(env, before)
    assert s.channel.counters.replayed == replayed + 3
    assert s.addr == CLIENT_ADDR  # a replay from elsewhere does not migrate the session
    # Replays of every datagram of the session, handshake included, are dropped too.
    for d in env.c2h:
        before = snapshot(env)
        env.host.receive_datagram(d, addr, T1)
        assert_no_effect(env, before)
    for d in env.h2c:
        before = snapshot(env)
        env.client.receive_datagram(d, T1)
        assert_no_effect(env, before)


def test_replay_below_window_dropped_before_decryption() -> None:
    env = make_env()
    ch = env.client.channel
    assert ch is not None
    ping = rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=1)))
    old = [ch.seal(ping)[1] for _ in range(3)]
    # Jump the host's window far ahead with one genuine datagram.
    for _ in range(5000):
        ch.seal_bytes(b"")  # burn ids locally (never sent)
    _, far = ch.seal(ping)
    env.host.receive_datagram(far, CLIENT_ADDR, T1)
    env.host.datagrams_to_send()
    s = env.host.sessions[env.alias]
    failed, replayed = s.channel.counters.auth_failed, s.channel.counters.replayed
    for d in old:  # authentic but below the window: dropped, no Pong
        before = snapshot(env)
        env.host.receive_datagram(d, CLIENT_ADDR, T1)
        assert_no_effect(env, before)
    assert s.channel.counters.replayed == replayed + 3
    assert s.channel.counters.auth_failed == failed


# ---- protobuf layer ----------------------------------------------------------------------

BAD_PLAINTEXTS = [
    b"\x0f",  # wire type 7 does not exist
    b"\x00",  # field number 0
    b"\x0a\x05ab",  # length beyond the end
    b"\x0a\x02\x1a",  # ControlMessage with a truncated field
    b"\x08",  # truncated varint
    b"\x0a\x05\x0a\x03\x0a\x01\xff",  # Hello.client_name: invalid UTF-8
]


@pytest.mark.parametrize("plaintext", BAD_PLAINTEXTS, ids=lambda b: b.hex())
def test_authentic_but_unparseable_plaintext_dropped_and_counted(plaintext: bytes) -> None:
    with pytest.raises(DecodeError):
        rift_pb2.Message().ParseFromString(plaintext)
    env = make_env()
    s = env.host.sessions[env.alias]
    ch = env.client.channel
    assert ch is not None
    malformed = s.channel.counters.malformed
    _, dgram = ch.seal_bytes(plaintext)
    env.host.receive_datagram(dgram, CLIENT_ADDR, T1)
    assert env.host.datagrams_to_send() == []
    assert env.host.next_event() is None
    assert s.channel.counters.malformed == malformed + 1
    assert env.alias in env.host.sessions and s.state is HostSessionState.ACTIVE
    # Host -> client too.
    cmal = ch.counters.malformed
    _, back = s.channel.seal_bytes(plaintext)
    env.client.receive_datagram(back, T1)
    assert env.client.datagrams_to_send() == [] and env.client.next_event() is None
    assert ch.counters.malformed == cmal + 1
    assert env.client.state is ClientState.ACTIVE
    # Both still serve.
    n = len(env.lb.client_events)
    env.client.ping(T1 + 0.1)
    env.lb.pump(T1 + 0.1)
    assert any(isinstance(e, ev.PongReceived) for e in env.lb.client_events[n:])


@FUZZ
@given(data=st.data())
def test_authentic_arbitrary_plaintext_never_crashes(data: st.DataObject) -> None:
    env = make_env()
    plaintext = data.draw(st.binary(max_size=300), label="plaintext")
    to_host = data.draw(st.booleans(), label="to_host")
    try:
        rift_pb2.Message().ParseFromString(plaintext)
        parses = True
    except DecodeError:
        parses = False
    s = env.host.sessions[env.alias]
    if to_host:
        _, dgram = env.client.channel.seal_bytes(plaintext)  # type: ignore[union-attr]
        env.host.receive_datagram(dgram, CLIENT_ADDR, T1)
        if not parses:
            assert env.host.datagrams_to_send() == [] and env.host.next_event() is None
            assert s.channel.counters.malformed == 1
        env.host.handle_timer(T1)
    else:
        _, dgram = s.channel.seal_bytes(plaintext)
        env.client.receive_datagram(dgram, T1)
        if not parses:
            assert env.client.datagrams_to_send() == [] and env.client.next_event() is None
            assert env.client.channel.counters.malformed == 1  # type: ignore[union-attr]
        env.client.handle_timer(T1)


# ---- handshake decoders ------------------------------------------------------------------


def hs(hid: bytes, number: int, payload: bytes) -> bytes:
    return encode_handshake_header(hid, number) + payload


@pytest.mark.parametrize("length", [0, 1, 16, 31])
def test_short_msg1_payload_is_dropped(length: int) -> None:
    env = make_env()
    before = snapshot(env)
    failed = env.host.counters.handshakes_failed
    env.host.receive_datagram(hs(b"\x42" * 12, 1, bytes(range(length))), ATTACKER_ADDR, T1)
    assert_no_effect(env, before)
    assert env.host.counters.handshakes_failed == failed + 1


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p[:3].hex())
def test_msg1_with_low_order_ephemeral_is_dropped(point: bytes) -> None:
    env = make_env()
    before = snapshot(env)
    failed = env.host.counters.handshakes_failed
    # padded like our clients' msg1, so the host answers the first copy (§2, amplification)
    env.host.receive_datagram(hs(b"\x43" * 12, 1, point + bytes(66)), ATTACKER_ADDR, T1)
    assert_no_effect(env, before)
    assert env.host.counters.handshakes_failed == failed + 1


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p[:3].hex())
def test_msg2_with_low_order_ephemeral_is_dropped_by_client(point: bytes) -> None:
    env = make_env(established=False)
    (msg1,) = env.client.datagrams_to_send()
    hid = parse_datagram(msg1).handshake_id  # type: ignore[union-attr]
    env.client.receive_datagram(hs(hid, 2, point + bytes(120)), T0 + 0.01)
    assert env.client.state is ClientState.HANDSHAKE and env.client.channel is None
    assert not any(isinstance(e, ev.HandshakeCompleted) for e in iter(env.client.next_event, None))


def test_unexpected_handshake_messages_change_nothing() -> None:
    env = make_env()
    known_hid = parse_datagram(env.c2h[0]).handshake_id  # type: ignore[union-attr]
    rnd = random.Random(5)
    cases = [
        hs(rnd.randbytes(12), 3, rnd.randbytes(96)),  # msg3, unknown handshake id
        hs(known_hid, 3, rnd.randbytes(96)),  # msg3 for a completed handshake
        hs(known_hid, 1, rnd.randbytes(32)),  # msg1 re-using a completed handshake id
        hs(rnd.randbytes(12), 2, rnd.randbytes(200)),  # msg2 sent to the host
        hs(known_hid, 2, rnd.randbytes(200)),
        hs(bytes(12), 1, rnd.randbytes(32)),  # all-zero handshake id
    ]
    for d in cases:
        before = snapshot(env)
        env.host.receive_datagram(d, ATTACKER_ADDR, T1)
        assert_no_effect(env, before)
        env.client.receive_datagram(d, T1)  # an ACTIVE client ignores handshake datagrams
        assert_no_effect(env, before)
    for number in (0, 5, 255, 2**64 - 1):
        d = fix_crc(encode_handshake_header(known_hid, 1)[:20] + number.to_bytes(8, "big") + b"xx")
        d = d + rnd.randbytes(32)
        before = snapshot(env)
        drops = env.host.counters.framing_drops
        env.host.receive_datagram(d, ATTACKER_ADDR, T1)
        assert_no_effect(env, before)
        assert env.host.counters.framing_drops == drops + 1


@FUZZ
@given(
    number=st.integers(1, 3),
    hid=st.binary(min_size=12, max_size=12),
    payload=st.binary(max_size=400),
)
def test_random_handshake_datagrams_never_create_a_session(
    number: int, hid: bytes, payload: bytes
) -> None:
    env = make_env()
    before = snapshot(env)
    env.host.receive_datagram(hs(hid, number, payload), ATTACKER_ADDR, T1)
    after = snapshot(env)
    assert after["sessions"] == before["sessions"]
    assert env.host.next_event() is None
    out = env.host.datagrams_to_send()
    if (
        number == 1
        and len(payload) >= 32
        and 3 * (30 + len(payload)) >= env.host.admission.msg2_len
        and hid != bytes(12)
        and payload[:32] not in LOW_ORDER
    ):
        # A well-formed msg1, large enough that 3x covers msg2, may start a handshake: one
        # pending entry and one msg2 back.
        assert after["pending"] == before["pending"] + 1
        assert len(out) == 1
        msg2, to = out[0]
        m = parse_datagram(msg2)
        assert isinstance(m, HandshakeDatagram)
        assert (m.message_number, m.handshake_id, to) == (2, hid, ATTACKER_ADDR)
    else:
        assert out == [] and after == before
    # A client in a handshake survives them too, even with its own handshake id (a forged
    # msg2 makes it restart the attempt, nothing more).
    fresh = make_env(seed=1, established=False)
    (msg1,) = fresh.client.datagrams_to_send()
    own_hid = parse_datagram(msg1).handshake_id  # type: ignore[union-attr]
    for h in (hid, own_hid):
        fresh.client.receive_datagram(hs(h, number, payload), T0)
        assert fresh.client.state is ClientState.HANDSHAKE and fresh.client.channel is None
    assert not any(
        isinstance(e, ev.HandshakeCompleted) for e in iter(fresh.client.next_event, None)
    )


def test_forged_msg3_does_not_abort_a_pending_handshake() -> None:
    # The handshake id is in clear in msg1: whoever saw it can send a msg3 with it.
    env = make_env(established=False)
    (msg1,) = env.client.datagrams_to_send()
    env.host.receive_datagram(msg1, CLIENT_ADDR, T0)
    ((msg2, _to),) = env.host.datagrams_to_send()
    hid = parse_datagram(msg1).handshake_id  # type: ignore[union-attr]
    assert env.host.pending_handshakes == 1
    failed = env.host.counters.handshakes_failed
    env.host.receive_datagram(hs(hid, 3, random.Random(3).randbytes(96)), ATTACKER_ADDR, T0)
    assert env.host.datagrams_to_send() == [] and env.host.next_event() is None
    assert env.host.pending_handshakes == 1, "the forged msg3 discarded the pending handshake"
    assert env.host.counters.handshakes_failed == failed + 1
    # A duplicate msg1 still gets the very same msg2 ...
    env.host.receive_datagram(msg1, CLIENT_ADDR, T0)
    assert env.host.datagrams_to_send() == [(msg2, CLIENT_ADDR)]
    # ... and the genuine msg3 completes the handshake.
    env.client.receive_datagram(msg2, T0)
    env.lb.pump(T0)
    assert env.client.state is ClientState.ACTIVE
    assert len(env.host.sessions) == 1 and env.host.pending_handshakes == 0


# ---- passive observer vs. the reference Rust key derivation ------------------------------


def _mix(h: bytes, data: bytes) -> bytes:
    return hashlib.blake2s(h + data).digest()


def observer_handshake_hash(prologue: bytes, msg1: bytes, msg2: bytes, msg3: bytes) -> bytes:
    """Noise XX handshake hash h computed from public bytes only (what any observer sees)."""
    h = hashlib.blake2s(PROTOCOL_NAME).digest()  # name longer than 32 bytes: hashed
    h = _mix(h, prologue)
    h = _mix(_mix(h, msg1[:32]), msg1[32:])  # e, payload (no key yet: plaintext)
    h = _mix(_mix(_mix(h, msg2[:32]), msg2[32:80]), msg2[80:])  # e, ee, s (48), es, payload
    return _mix(_mix(h, msg3[:48]), msg3[48:])  # s (48), se, payload


def _xor(a: bytes, b: bytes) -> bytes:
    assert len(a) == len(b) == 32
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _open(key: bytes, datagram: bytes) -> bytes | None:
    header, ct = datagram[:18], datagram[18:]
    pid = int.from_bytes(header[8:16], "big")
    try:
        return ChaCha20Poly1305(key).decrypt(b"\x00" * 4 + struct.pack("<Q", pid), ct, header)
    except InvalidTag:
        return None


def test_reference_xor_keys_do_not_open_transport_packets() -> None:
    env = make_env(seed=11)
    host, client, lb = env.host, env.client, env.lb
    for i in range(5):  # some more traffic both ways
        client.ping(T0 + 1 + i)
        lb.pump(T0 + 1 + i)
    host.send_message(
        env.alias,
        rift_pb2.Message(
            control=rift_pb2.ControlMessage(clipboard=rift_pb2.ClipboardMessage(text="secret"))
        ),
    )
    lb.pump(T0 + 7)
    captured = lb.to_host + lb.to_client  # everything a passive observer saw
    hs_msgs = {}
    for d in captured:
        p = parse_datagram(d)
        if isinstance(p, HandshakeDatagram):
            hs_msgs.setdefault(p.message_number, p.payload)
    assert sorted(hs_msgs) == [1, 2, 3]

    completed = [e for e in lb.client_events if isinstance(e, ev.HandshakeCompleted)]
    h = completed[0].handshake_hash
    # The observer really can compute h from the transcript alone ...
    assert observer_handshake_hash(b"RIFT/1", hs_msgs[1], hs_msgs[2], hs_msgs[3]) == h
    assert host.sessions[env.alias].handshake_hash == h
    # ... and derive the reference implementation's keys from it.
    ref_i2r, ref_r2i = _xor(h, LABEL_I2R), _xor(h, LABEL_R2I)

    # Our keys are Noise Split(): first key client -> host, second host -> client.
    ch = client.channel
    assert ch is not None
    k1, k2 = client._hs.split()  # type: ignore[union-attr]
    assert (ch.send_key, ch.recv_key) == (k1, k2)
    hch = host.sessions[env.alias].channel
    assert (hch.recv_key, hch.send_key) == (k1, k2)
    assert len({k1, k2, ref_i2r, ref_r2i}) == 4

    c2h = [d for d in lb.to_host if isinstance(parse_datagram(d), TransportDatagram)]
    h2c = [d for d in lb.to_client if isinstance(parse_datagram(d), TransportDatagram)]
    assert len(c2h) >= 7 and len(h2c) >= 8
    for d in c2h:
        assert _open(ref_i2r, d) is None and _open(ref_r2i, d) is None
        pt = _open(k1, d)  # sanity: the nonce/aad layout used above is the right one
        assert pt is not None
        rift_pb2.Message().ParseFromString(pt)
    texts = []
    for d in h2c:
        assert _open(ref_r2i, d) is None and _open(ref_i2r, d) is None
        pt = _open(k2, d)
        assert pt is not None
        m = rift_pb2.Message()
        m.ParseFromString(pt)
        texts.append(m.control.clipboard.text)
    assert "secret" in texts


def _vector() -> dict[str, Any]:
    path = VECTORS / "noise_xx_25519_chachapoly_blake2s.json"
    for v in json.loads(path.read_text())["vectors"]:
        if v["protocol_name"] == PROTOCOL_NAME.decode():
            return dict(v)
    raise AssertionError("Noise_XX_25519_ChaChaPoly_BLAKE2s vector missing")


def _hkdf2(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = hmac.new(ck, ikm, hashlib.blake2s).digest()
    out1 = hmac.new(temp, b"\x01", hashlib.blake2s).digest()
    return out1, hmac.new(temp, out1 + b"\x02", hashlib.blake2s).digest()


def _noise_nonce(n: int) -> bytes:
    return b"\x00" * 4 + struct.pack("<Q", n)


class _Symmetric:
    """Noise SymmetricState, written from the Noise spec (rev. 34 §5.2) for this test only."""

    def __init__(self, prologue: bytes) -> None:
        self.h = hashlib.blake2s(PROTOCOL_NAME).digest()
        self.ck = self.h
        self.k: bytes | None = None
        self.n = 0
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.h = _mix(self.h, data)

    def mix_key(self, ikm: bytes) -> None:
        self.ck, self.k = _hkdf2(self.ck, ikm)
        self.n = 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        if self.k is None:
            ct = plaintext
        else:
            ct = ChaCha20Poly1305(self.k).encrypt(_noise_nonce(self.n), plaintext, self.h)
            self.n += 1
        self.mix_hash(ct)
        return ct

    def split(self) -> tuple[bytes, bytes]:
        return _hkdf2(self.ck, b"")


def _x25519(private: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(private)


def _pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _dh(key: X25519PrivateKey, public: bytes) -> bytes:
    return key.exchange(X25519PublicKey.from_public_bytes(public))


def test_split_recomputed_independently_from_the_noise_vector() -> None:
    v = _vector()
    b = bytes.fromhex
    msgs = v["messages"]
    si, ei = _x25519(b(v["init_static"])), _x25519(b(v["init_ephemeral"]))
    sr, er = _x25519(b(v["resp_static"])), _x25519(b(v["resp_ephemeral"]))
    sym = _Symmetric(b(v["init_prologue"]))
    # msg1 -> e
    m1 = _pub(ei)
    sym.mix_hash(m1)
    m1 += sym.encrypt_and_hash(b(msgs[0]["payload"]))
    # msg2 <- e, ee, s, es
    m2 = _pub(er)
    sym.mix_hash(m2)
    sym.mix_key(_dh(er, _pub(ei)))
    m2 += sym.encrypt_and_hash(_pub(sr))
    sym.mix_key(_dh(ei, _pub(sr)))
    m2 += sym.encrypt_and_hash(b(msgs[1]["payload"]))
    # msg3 -> s, se
    m3 = sym.encrypt_and_hash(_pub(si))
    sym.mix_key(_dh(si, _pub(er)))
    m3 += sym.encrypt_and_hash(b(msgs[2]["payload"]))
    assert [m1, m2, m3] == [b(m["ciphertext"]) for m in msgs[:3]]
    assert sym.h == b(v["handshake_hash"])
    assert observer_handshake_hash(b(v["init_prologue"]), m1, m2, m3) == sym.h
    k1, k2 = sym.split()

    # Transport messages 3..5: responder k2 n=0, initiator k1 n=0, responder k2 n=1 (empty ad).
    for (key, n), m in zip([(k2, 0), (k1, 0), (k2, 1)], msgs[3:6], strict=True):
        pt = ChaCha20Poly1305(key).decrypt(_noise_nonce(n), b(m["ciphertext"]), b"")
        assert pt == b(m["payload"])
    # The XOR-of-h keys of the reference implementation do not decrypt them.
    for key, m in [(_xor(sym.h, LABEL_R2I), msgs[3]), (_xor(sym.h, LABEL_I2R), msgs[4])]:
        with pytest.raises(InvalidTag):
            ChaCha20Poly1305(key).decrypt(_noise_nonce(0), b(m["ciphertext"]), b"")

    # wavry's NoiseXX.split() yields the same keys for the same transcript.
    init = NoiseXX(True, b(v["init_static"]), b(v["init_prologue"]), b(v["init_ephemeral"]))
    resp = NoiseXX(False, b(v["resp_static"]), b(v["resp_prologue"]), b(v["resp_ephemeral"]))
    for (writer, reader), m in zip(
        [(init, resp), (resp, init), (init, resp)], msgs[:3], strict=True
    ):
        reader.read_message(writer.write_message(b(m["payload"])))
    assert init.split() == resp.split() == (k1, k2)
    assert init.handshake_hash == sym.h
