"""docs/spec/RIFT.md §12 interop: an independent minimal client, written from docs/spec/RIFT.md
alone, against the
real `wavry host` process over UDP.

Nothing of wavry's RIFT implementation is imported here: framing, CRC-16/KERMIT, the handshake
datagrams, identity proofs, Split() keys, packet ids, nonces and the replay check are all
re-implemented below. Only the generated protobuf module is used, for message encoding.
Libraries: `noise` (noiseprotocol) for Noise XX, `cryptography` for ChaCha20-Poly1305/Ed25519.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from noise.connection import Keypair, NoiseConnection

from wavry.rift import rift_pb2

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = b"Noise_XX_25519_ChaChaPoly_BLAKE2s"
PROLOGUE = b"RIFT/1"
SIG_CONTEXT = b"RIFT/1 static key"
MAGIC = b"RI"
VERSION = 1
REPLAY_WINDOW = 2048


def wavry_exe() -> str:
    exe = Path(sys.executable).parent / "wavry"
    return str(exe if exe.exists() else REPO / ".venv" / "bin" / "wavry")


# ---- docs/spec/RIFT.md §1: framing ---------------------------------------------------------------


def crc16_kermit(data: bytes) -> int:
    """Poly 0x1021 reflected (0x8408), init 0, no final XOR; bitwise, straight from §1."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def handshake_header(handshake_id: bytes, number: int) -> bytes:
    assert len(handshake_id) == 12
    body = MAGIC + struct.pack(">HI", VERSION, 0) + handshake_id + struct.pack(">Q", number)
    return body + struct.pack(">H", crc16_kermit(body))


def transport_header(alias: int, packet_id: int) -> bytes:
    body = MAGIC + struct.pack(">HIQ", VERSION, alias, packet_id)
    return body + struct.pack(">H", crc16_kermit(body))


@dataclass
class Parsed:
    kind: str  # "handshake" or "transport"
    header: bytes
    payload: bytes
    handshake_id: bytes = b""
    number: int = 0
    alias: int = 0
    packet_id: int = 0


def parse(data: bytes) -> Parsed | None:
    if len(data) < 18 or data[:2] != MAGIC or struct.unpack(">H", data[2:4])[0] != VERSION:
        return None
    if data[4:8] == bytes(4):
        if len(data) < 30:
            return None
        header = data[:30]
        if crc16_kermit(header[:28]) != struct.unpack(">H", header[28:30])[0]:
            return None
        (number,) = struct.unpack(">Q", header[20:28])
        return Parsed("handshake", header, data[30:], handshake_id=header[8:20], number=number)
    header = data[:18]
    alias, packet_id, crc = struct.unpack(">IQH", header[4:18])
    if crc16_kermit(header[:16]) != crc:
        return None
    return Parsed("transport", header, data[18:], alias=alias, packet_id=packet_id)


def nonce(packet_id: int) -> bytes:
    return b"\x00\x00\x00\x00" + struct.pack("<Q", packet_id)


def wavry_id(identity_key: bytes) -> str:
    return base64.urlsafe_b64encode(identity_key).rstrip(b"=").decode("ascii")


def raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_own_crc_and_golden_headers_match_the_spec() -> None:
    assert crc16_kermit(b"123456789") == 0x2189
    assert transport_header(0x12345678, 999).hex() == "524900011234567800000000000003e73d23"
    assert handshake_header(bytes(range(1, 13)), 1).hex() == (
        "5249000100000000" + "0102030405060708090a0b0c" + "0000000000000001" + "c1e0"
    )


# ---- the independent client --------------------------------------------------------------


def ping_msg(ts: int) -> rift_pb2.Message:
    return rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=ts)))


@dataclass
class Received:
    message: rift_pb2.Message
    packet_id: int
    at_us: int


@dataclass
class IndependentClient:
    host: tuple[str, int]
    sock: socket.socket = field(init=False)
    identity: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    static: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    alias: int = 0
    host_identity_key: bytes = b""
    host_name: str = ""
    handshake_hash: bytes = b""
    next_packet_id: int = 1
    highest: int = 0
    seen: set[int] = field(default_factory=set)
    host_packet_ids: list[int] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    raw: dict[int, bytes] = field(default_factory=dict)  # packet id -> encrypted payload
    inbox: list[Received] = field(default_factory=list)  # everything authentic, in order
    unread: list[Received] = field(default_factory=list)  # not yet taken by wait_for()
    msg3: bytes = b""
    #: ids this client pretends it lost (after the header checks): not opened, reported missing
    drop: Callable[[int], bool] | None = None
    dropped: dict[int, bytes] = field(default_factory=dict)  # pid -> encrypted payload
    arrivals: dict[int, int] = field(default_factory=dict)  # pid -> arrival, µs
    reported: int = 0  # the highest id covered by a TransportFeedback
    _send: ChaCha20Poly1305 | None = None
    _recv: ChaCha20Poly1305 | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    @property
    def wavry_id(self) -> str:
        return wavry_id(raw_public(self.identity))

    def close(self) -> None:
        self.sock.close()

    # §2 handshake
    def handshake(self, timeout: float = 5.0) -> None:
        conn = NoiseConnection.from_name(PROTOCOL)
        conn.set_as_initiator()
        conn.set_prologue(PROLOGUE)
        static_raw = self.static.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        conn.set_keypair_from_private_bytes(Keypair.STATIC, static_raw)
        conn.start_handshake()
        hid = os.urandom(12)
        while hid == bytes(12):
            hid = os.urandom(12)
        msg1 = handshake_header(hid, 1) + bytes(conn.write_message(b""))
        assert len(msg1) == 30 + 32

        deadline = time.monotonic() + timeout
        retry, next_send = 0.25, 0.0
        msg2: Parsed | None = None
        while msg2 is None:
            now = time.monotonic()
            assert now < deadline, "no msg2 from the host"
            if now >= next_send:
                self.sock.sendto(msg1, self.host)  # §2: resend the same bytes, with backoff
                next_send, retry = now + retry, min(retry * 2, 2.0)
            self.sock.settimeout(max(0.01, min(next_send, deadline) - time.monotonic()))
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            p = parse(data)
            if p and p.kind == "handshake" and p.number == 2 and p.handshake_id == hid:
                msg2 = p

        payload = bytes(conn.read_message(msg2.payload))
        host_static = bytes(conn.noise_protocol.handshake_state.rs.public_bytes)
        hp = rift_pb2.HandshakePayload()
        hp.ParseFromString(payload)
        assert len(hp.identity_key) == 32
        # Raises InvalidSignature when the host's identity proof is wrong.
        Ed25519PublicKey.from_public_bytes(hp.identity_key).verify(
            hp.identity_sig, SIG_CONTEXT + host_static
        )
        assert hp.session_alias != 0
        assert len(hp.name.encode()) <= 64
        self.alias, self.host_identity_key, self.host_name = (
            hp.session_alias,
            hp.identity_key,
            hp.name,
        )

        mine = rift_pb2.HandshakePayload(
            identity_key=raw_public(self.identity),
            identity_sig=self.identity.sign(SIG_CONTEXT + raw_public(self.static)),
            name="independent-client",
        )
        self.msg3 = handshake_header(hid, 3) + bytes(conn.write_message(mine.SerializeToString()))
        assert conn.handshake_finished
        # §3: Split(); first key client -> host, second host -> client. Noise's own nonce
        # counters are not used: only the keys are taken from the cipher states.
        proto = conn.noise_protocol
        k_send, k_recv = bytes(proto.cipher_state_encrypt.k), bytes(proto.cipher_state_decrypt.k)
        assert len(k_send) == len(k_recv) == 32 and k_send != k_recv
        self._send, self._recv = ChaCha20Poly1305(k_send), ChaCha20Poly1305(k_recv)
        self.handshake_hash = bytes(conn.get_handshake_hash())
        self.sock.sendto(self.msg3, self.host)

    # §3 transport
    def seal(self, message: rift_pb2.Message) -> bytes:
        assert self._send is not None
        pid = self.next_packet_id
        self.next_packet_id += 1
        header = transport_header(self.alias, pid)
        datagram = header + self._send.encrypt(nonce(pid), message.SerializeToString(), header)
        assert len(datagram) <= 1400
        return datagram

    def send(self, message: rift_pb2.Message) -> bytes:
        datagram = self.seal(message)
        self.sent.append(datagram)
        self.sock.sendto(datagram, self.host)
        return datagram

    def _accept(self, data: bytes) -> Received | None:
        assert self._recv is not None
        p = parse(data)
        if p is None or p.kind != "transport" or p.alias != self.alias:
            return None
        pid = p.packet_id
        if pid in self.seen or pid + REPLAY_WINDOW <= self.highest:
            return None  # replay check before decryption
        if self.drop is not None and self.drop(pid):
            self.dropped[pid] = p.payload
            return None
        try:
            plaintext = self._recv.decrypt(nonce(pid), p.payload, p.header)
        except InvalidTag:
            return None
        self.seen.add(pid)
        self.raw[pid] = p.payload
        self.arrivals[pid] = time.monotonic_ns() // 1000
        self.highest = max(self.highest, pid)
        self.host_packet_ids.append(pid)
        msg = rift_pb2.Message()
        msg.ParseFromString(plaintext)
        return Received(msg, pid, time.time_ns() // 1000)

    def pump(self, timeout: float) -> list[Received]:
        """Receive (and decrypt) everything arriving within `timeout` seconds."""
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                return got
            r = self._accept(data)
            if r is not None:
                got.append(r)
                self.inbox.append(r)
                self.unread.append(r)

    def wait_for(self, kind: str, timeout: float = 3.0) -> Received:
        """The next control message of `kind`; others stay in the inbox."""
        deadline = time.monotonic() + timeout
        while True:
            for i, r in enumerate(self.unread):
                if r.message.control.WhichOneof("content") == kind:
                    return self.unread.pop(i)
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {kind} from the host within {timeout} s")
            self.pump(min(0.05, max(0.0, deadline - time.monotonic())))

    def hello(self, timeout: float = 5.0, fec_schemes: tuple[int, ...] = ()) -> rift_pb2.HelloAck:
        hello = rift_pb2.Hello(
            client_name="independent-client",
            platform=rift_pb2.LINUX,
            supported_codecs=[rift_pb2.HEVC, rift_pb2.H264],
            max_resolution=rift_pb2.Resolution(width=1279, height=721),
            max_fps=30,
            input_caps=0,
            protocol_version=1,
            fec_schemes=fec_schemes,  # type: ignore[arg-type]
        )
        msg = rift_pb2.Message(control=rift_pb2.ControlMessage(hello=hello))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.inbox:  # §2: msg3 rides along until the host is heard from
                self.sock.sendto(self.msg3, self.host)
            self.send(msg)
            try:
                return self.wait_for("hello_ack", 0.2).message.control.hello_ack
            except AssertionError:
                continue
        raise AssertionError("no HelloAck")

    def ping(self, timeout: float = 2.0) -> tuple[int, rift_pb2.Pong, int]:
        ts = time.time_ns() // 1000
        self.send(ping_msg(ts))
        pong = self.wait_for("pong", timeout)
        return ts, pong.message.control.pong, pong.at_us

    def send_feedback(self) -> None:
        """§5 TransportFeedback over the ids since the last one, up to the highest received."""
        first, last = self.reported + 1, self.highest
        got = [pid for pid in range(first, last + 1) if pid in self.arrivals]
        if not got:
            return
        bitmap = bytearray((last - first + 1 + 7) // 8)
        for pid in got:
            i = pid - first
            bitmap[i // 8] |= 1 << (i % 8)  # LSB first within each byte
        ref = self.arrivals[got[0]]
        fb = rift_pb2.TransportFeedback(
            base_packet_id=first,
            packet_count=last - first + 1,
            received_bitmap=bytes(bitmap),
            reference_time_us=ref,
            arrival_delta_us=[self.arrivals[pid] - ref for pid in got],
        )
        self.send(rift_pb2.Message(control=rift_pb2.ControlMessage(transport_feedback=fb)))
        self.reported = last

    def disconnect(self) -> None:
        d = rift_pb2.Disconnect(reason=1, message="independent client done")
        for _ in range(3):
            self.send(rift_pb2.Message(control=rift_pb2.ControlMessage(disconnect=d)))


# ---- the real host -----------------------------------------------------------------------


@dataclass
class HostProc:
    proc: subprocess.Popen[str]
    port: int
    wavry_id: str
    lines: list[str]
    errors: list[str]
    lock: threading.Lock

    def wait_line(self, pattern: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
            time.sleep(0.02)
        raise AssertionError(f"host never printed {pattern!r}; output: {self.lines}")

    def moved(self, alias: int) -> list[str]:
        """Host log lines saying session `alias` migrated to another address."""
        with self.lock:
            return [line for line in self.lines if f"session {alias:08x} moved" in line]


def _reader(stream, sink: list[str], lock: threading.Lock) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        with lock:
            sink.append(line.rstrip("\n"))


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProc]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("host-xdg")))
    env.pop("XDG_DATA_HOME", None)
    proc = subprocess.Popen(
        [wavry_exe(), "host", "--listen", "127.0.0.1:0", "--trust", "any", "--name", "interop"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    for stream, sink in ((proc.stdout, lines), (proc.stderr, errors)):
        threading.Thread(target=_reader, args=(stream, sink, lock), daemon=True).start()
    h = HostProc(proc, 0, "", lines, errors, lock)
    try:
        listening = h.wait_line(r"listening on udp://", timeout=15.0)
        h.port = int(listening.rsplit(":", 1)[1])
        h.wavry_id = h.wait_line(r"Wavry ID: ").split("Wavry ID:")[1].strip()
        assert len(h.wavry_id) == 43
        yield h
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise
    assert code == 0, f"host exited with {code}: {errors}"
    assert not any("Traceback" in e for e in errors), "\n".join(errors)


@pytest.fixture
def client(host: HostProc) -> Iterator[IndependentClient]:
    c = IndependentClient(("127.0.0.1", host.port))
    yield c
    if c.alias and c._send is not None:
        c.disconnect()
    c.close()


def _session(client: IndependentClient) -> rift_pb2.HelloAck:
    client.handshake()
    return client.hello()


# ---- tests -------------------------------------------------------------------------------


def test_handshake_hello_and_pings(host: HostProc, client: IndependentClient) -> None:
    client.handshake()
    assert wavry_id(client.host_identity_key) == host.wavry_id
    assert client.host_name == "interop"
    assert len(client.handshake_hash) == 32

    ack = client.hello()
    assert ack.accepted, ack.message
    assert ack.reject_reason == rift_pb2.REJECT_NONE
    assert ack.session_alias == client.alias
    assert ack.selected_codec in (rift_pb2.HEVC, rift_pb2.H264)
    res = ack.stream_resolution
    assert 0 < res.width <= 1279 and 0 < res.height <= 721
    assert res.width % 2 == 0 and res.height % 2 == 0
    assert 0 < ack.fps <= 30
    assert ack.initial_bitrate_kbps > 0 and ack.keyframe_interval_ms > 0
    assert len(ack.session_id) == 16
    client.wait_for("monitor_list")  # §4 step 5
    # The host verified our identity proof and derived our Wavry ID the same way.
    host.wait_line(re.escape(f"({client.wavry_id})"))
    host.wait_line(f"session {client.alias:08x} accepted for {re.escape(client.wavry_id)}")

    for _ in range(20):
        ts, pong, got_us = client.ping()
        assert pong.timestamp_us == ts
        # Same machine, same wall clock: the host read it between our send and our receive.
        assert ts - 5_000 <= pong.host_time_us <= got_us + 5_000
    # §3: the host's packet ids start at 1 and grow by one per datagram.
    ids = client.host_packet_ids
    assert ids[0] == 1
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert ids == list(range(1, len(ids) + 1))


def test_replayed_ping_is_not_answered(host: HostProc, client: IndependentClient) -> None:
    assert _session(client).accepted
    ts, pong, _ = client.ping()
    assert pong.timestamp_us == ts
    replay = client.sent[-1]
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    try:
        for _ in range(3):
            client.sock.sendto(replay, client.host)  # byte-identical, same source
            attacker.sendto(replay, client.host)  # and from somewhere else
        # A fresh ping is answered; nothing answers the replays.
        ts2, pong2, _ = client.ping()
        assert pong2.timestamp_us == ts2
        later = client.pump(0.3)
        pongs = [r.message.control.pong.timestamp_us for r in client.inbox]
        assert pongs.count(ts) == 1, f"replayed Ping answered: {pongs}"
        assert not [r for r in later if r.message.control.WhichOneof("content") == "pong"]
        # The replay from another address did not move the session there.
        attacker.settimeout(0.2)
        with pytest.raises(TimeoutError):
            attacker.recvfrom(65535)
        ts3, pong3, _ = client.ping()
        assert pong3.timestamp_us == ts3
        assert host.moved(client.alias) == []
    finally:
        attacker.close()


def test_garbage_bursts_do_not_disturb_the_session(
    host: HostProc, client: IndependentClient
) -> None:
    assert _session(client).accepted
    rnd = random.Random(1234)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        attacker.bind(("127.0.0.2", 0))  # its own source address: its own rate-limit bucket
    except OSError:
        attacker.bind(("127.0.0.1", 0))
    try:
        for burst in range(5):
            # A msg1 whose ephemeral key is a low-order point (the host's DH result is all
            # zeros); sent first, while this source still has handshake tokens, so it reaches
            # the key agreement. The host must drop it without an exception (checked at the
            # end of the module: no traceback on the host's stderr).
            attacker.sendto(handshake_header(rnd.randbytes(12), 1) + bytes(32), client.host)
            for i in range(200):
                kind = i % 5
                if kind == 0:
                    d = rnd.randbytes(rnd.randrange(0, 1500))
                elif kind == 1:  # bogus msg1: valid header, random id, random "ephemeral"
                    d = handshake_header(rnd.randbytes(12), 1) + rnd.randbytes(32)
                elif kind == 2:  # our alias, random id, garbage: must fail the tag
                    pid = rnd.randrange(1, 2**64)
                    d = transport_header(client.alias, pid) + rnd.randbytes(rnd.randrange(60))
                elif kind == 3:  # bogus msg3 for random handshake ids
                    d = handshake_header(rnd.randbytes(12), 3) + rnd.randbytes(96)
                else:  # our own ping with the CRC broken
                    d = bytearray(client.sent[-1])
                    d[17] ^= 0xFF
                    d = bytes(d)
                attacker.sendto(d, client.host)
            for _ in range(3):
                ts, pong, _ = client.ping()
                assert pong.timestamp_us == ts, f"burst {burst}"
        # Nothing unauthenticated moved the session to the attacker's address.
        assert host.moved(client.alias) == []
    finally:
        attacker.close()


def _ping_cli(host: HostProc, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp))
    return subprocess.run(
        [wavry_exe(), "ping", f"127.0.0.1:{host.port}", "--count", "5", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=40,
    )


def test_wavry_ping_cli_against_the_host(host: HostProc, tmp_path: Path) -> None:
    r = _ping_cli(host, tmp_path)
    assert r.returncode == 0, r.stderr
    assert host.wavry_id in r.stdout
    assert "5 pings, 5 pongs" in r.stdout
    r = _ping_cli(
        host, tmp_path, "--json", "-"
    )  # same config dir: the pin from the first run holds
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["sent"] == 5 and data["received"] == 5
    assert data["host_id"] == host.wavry_id
    assert data["rtt_ms"]["min"] is not None and data["rtt_ms"]["min"] >= 0


# ---- docs/spec/RIFT.md §7.1: the host's FEC parities, checked byte for byte ----------------------


def xor_class(shards: list[bytes], parity_index: int, parity_count: int) -> bytes:
    """§7 from the text: XOR of shards i with i mod m == j, zero-padded to the longest shard."""
    longest = max(len(s) for s in shards)
    out = bytearray(longest)
    for i, shard in enumerate(shards):
        if i % parity_count == parity_index:
            for n, byte in enumerate(shard):
                out[n] ^= byte
    return bytes(out)


@pytest.fixture(scope="module")
def video_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProc]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("video-host-xdg")))
    env.pop("DISPLAY", None)
    argv = [wavry_exe(), "host", "--listen", "127.0.0.1:0", "--trust", "any"]
    argv += ["--source", "synthetic", "--size", "640x360", "--fps", "30", "--bitrate-kbps", "3000"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    lines: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    for stream, sink in ((proc.stdout, lines), (proc.stderr, errors)):
        threading.Thread(target=_reader, args=(stream, sink, lock), daemon=True).start()
    h = HostProc(proc, 0, "", lines, errors, lock)
    try:
        h.port = int(h.wait_line(r"listening on udp://", timeout=15.0).rsplit(":", 1)[1])
        yield h
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_host_fec_parities_match_the_spec_byte_for_byte(video_host: HostProc) -> None:
    c = IndependentClient(("127.0.0.1", video_host.port))
    try:
        c.handshake()
        ack = c.hello()  # no fec_schemes: XOR only (§7)
        assert ack.accepted, ack.message
        assert ack.fec_scheme == rift_pb2.FEC_XOR_INTERLEAVED
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            c.pump(0.2)
            c.send(ping_msg(time.time_ns() // 1000))  # keep the session alive
        fecs = [
            (r.packet_id, r.message.media.fec)
            for r in c.inbox
            if r.message.WhichOneof("content") == "media"
            and r.message.media.WhichOneof("content") == "fec"
        ]
        videos = [
            r
            for r in c.inbox
            if r.message.WhichOneof("content") == "media"
            and r.message.media.WhichOneof("content") == "video"
        ]
        assert len(videos) > 50, "the host streamed no video"
        assert len(fecs) >= 20, "the host sent no FEC parities"
        checked = 0
        for carrier, fec in fecs:
            k, m, first = fec.shard_count, fec.parity_count, fec.first_packet_id
            assert fec.scheme == rift_pb2.FEC_XOR_INTERLEAVED
            assert 1 <= m <= k <= 64 and 0 <= fec.parity_index < m
            assert carrier > first + k - 1  # §7: the parity rides above the group's ids
            ids = range(first, first + k)
            if not all(i in c.raw for i in ids):
                continue  # a shard lost on loopback (not expected): cannot check this group
            shards = [c.raw[i] for i in ids]
            assert list(fec.shard_lengths) == [len(s) for s in shards]
            assert fec.payload == xor_class(shards, fec.parity_index, m)
            checked += 1
        assert checked >= 20
        # §7 recovery, done by hand: pretend the first shard of a group is lost, rebuild it from
        # the parity and the class's other shards, and authenticate it with its rebuilt header.
        carrier, fec = next((p, f) for p, f in fecs if f.shard_count >= 2)
        first, m = fec.first_packet_id, fec.parity_count
        j = fec.parity_index
        members = [first + i for i in range(fec.shard_count) if i % m == j]
        lost = members[0]
        rebuilt = bytearray(fec.payload)
        for pid in members[1:]:
            for n, byte in enumerate(c.raw[pid]):
                rebuilt[n] ^= byte
        payload = bytes(rebuilt[: fec.shard_lengths[lost - first]])
        assert payload == c.raw[lost]
        header = transport_header(c.alias, lost)
        assert c._recv is not None
        c._recv.decrypt(nonce(lost), payload, header)  # raises InvalidTag if wrong
    finally:
        if c.alias and c._send is not None:
            c.disconnect()
        c.close()


# ---- docs/spec/RIFT.md §7.2: Reed-Solomon parities, checked against the spec's own math ---------


class GF256:
    """GF(2^8) with x^8+x^4+x^3+x^2+1 (0x11d), alpha = 2, written from §7.2 (not zfec)."""

    def __init__(self) -> None:
        self.exp = [0] * 512
        self.log = [0] * 256
        x = 1
        for i in range(255):
            self.exp[i] = x
            self.log[x] = i
            x <<= 1
            if x & 0x100:
                x ^= 0x11D
        for i in range(255, 512):
            self.exp[i] = self.exp[i - 255]
        # one byte-translation table per coefficient: c · shard is shard.translate(mul[c])
        self.mul = [bytes(self.times(c, b) for b in range(256)) for c in range(256)]

    def times(self, a: int, b: int) -> int:
        return 0 if a == 0 or b == 0 else self.exp[self.log[a] + self.log[b]]

    def inverse(self, a: int) -> int:
        assert a != 0
        return self.exp[255 - self.log[a]]

    def invert(self, matrix: list[list[int]]) -> list[list[int]]:
        """Gauss-Jordan over the field (addition is XOR)."""
        n = len(matrix)
        a = [row[:] + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(matrix)]
        for col in range(n):
            pivot = next(r for r in range(col, n) if a[r][col])
            a[col], a[pivot] = a[pivot], a[col]
            inv = self.inverse(a[col][col])
            a[col] = [self.times(inv, v) for v in a[col]]
            for r in range(n):
                if r != col and a[r][col]:
                    f = a[r][col]
                    a[r] = [v ^ self.times(f, w) for v, w in zip(a[r], a[col], strict=True)]
        return [row[n:] for row in a]

    def matmul(self, x: list[list[int]], y: list[list[int]]) -> list[list[int]]:
        out = []
        for row in x:
            acc = [0] * len(y[0])
            for coef, yrow in zip(row, y, strict=True):
                if coef:
                    acc = [v ^ self.times(coef, w) for v, w in zip(acc, yrow, strict=True)]
            out.append(acc)
        return out

    def generator(self, k: int, m: int) -> list[list[int]]:
        """G = V · inv(V[0..k-1]); V row 0 = (1, 0, ..., 0), V[r][c] = alpha^((r-1)·c)."""
        v = [[1 if c == 0 else 0 for c in range(k)]]
        v += [[self.exp[((r - 1) * c) % 255] for c in range(k)] for r in range(1, k + m)]
        return self.matmul(v, self.invert(v[:k]))

    def combine(self, coefficients: list[int], shards: list[bytes], length: int) -> bytes:
        """Σ coefficient_i · shard_i over shards zero-padded to `length`."""
        acc = 0
        for coef, shard in zip(coefficients, shards, strict=True):
            if coef:
                term = shard.ljust(length, b"\0").translate(self.mul[coef])
                acc ^= int.from_bytes(term, "big")
        return acc.to_bytes(length, "big")


def test_own_gf256_reproduces_the_spec_vectors() -> None:
    """The helper above is the spec's code: it reproduces tests/vectors/fec (small cases)."""
    gf = GF256()
    vectors = json.loads((REPO / "tests/vectors/fec/reed_solomon_gf256.json").read_text())
    for case in vectors["cases"]:
        k, m = case["k"], case["m"]
        if k > 12:
            continue
        shards = [bytes.fromhex(h) for h in case["shards_hex"]]
        g = gf.generator(k, m)
        assert g[:k] == [[1 if i == j else 0 for j in range(k)] for i in range(k)]
        assert g[k:] == case["parity_coefficients"]
        longest = max(len(x) for x in shards)
        parities = [gf.combine(g[k + j], shards, longest).hex() for j in range(m)]
        assert parities == case["parities_hex"]


def test_host_reed_solomon_parities_match_the_spec_math(video_host: HostProc) -> None:
    """A client that offers RS gets RS (§7), and every parity of a group it has whole is
    Σ G[k+j][i] · shard_i by its own GF(2^8). It pretends to lose every 16th datagram and
    reports that in TransportFeedback, so the host sizes its parities for a lossy path; a group
    that lost as many shards as it has parities is rebuilt by hand from any k of k+m."""
    gf = GF256()
    c = IndependentClient(("127.0.0.1", video_host.port))
    try:
        c.handshake()
        ack = c.hello(fec_schemes=(rift_pb2.FEC_REED_SOLOMON, rift_pb2.FEC_XOR_INTERLEAVED))
        assert ack.accepted, ack.message
        assert ack.fec_scheme == rift_pb2.FEC_REED_SOLOMON
        c.drop = lambda pid: pid % 16 == 5
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            c.pump(0.05)
            c.send_feedback()
            c.send(ping_msg(time.time_ns() // 1000))  # keep the session alive
        fecs = [
            (r.packet_id, r.message.media.fec)
            for r in c.inbox
            if r.message.WhichOneof("content") == "media"
            and r.message.media.WhichOneof("content") == "fec"
        ]
        assert len(fecs) >= 20, "the host sent no FEC parities"
        checked = rebuilt = 0
        widest = 0
        known = {**c.raw, **c.dropped}  # every encrypted payload that reached the socket
        for carrier, fec in fecs:
            k, m, first = fec.shard_count, fec.parity_count, fec.first_packet_id
            assert fec.scheme == rift_pb2.FEC_REED_SOLOMON  # every parity of the session
            assert k >= 1 and m >= 1 and k + m <= 255 and 0 <= fec.parity_index < m
            assert carrier > first + k - 1
            ids = range(first, first + k)
            if not all(i in known for i in ids):
                continue
            shards = [known[i] for i in ids]
            assert list(fec.shard_lengths) == [len(x) for x in shards]
            g = gf.generator(k, m)
            assert fec.payload == gf.combine(g[k + fec.parity_index], shards, len(fec.payload))
            checked += 1
            widest = max(widest, m)
        assert checked >= 20
        assert widest >= 2, "the host never sent two parities for a group on a lossy path"

        # §7.2 decoding by hand: groups with every parity in hand; pretend the first m data
        # shards were lost, rebuild them from the other k (data and parities) and authenticate
        by_group: dict[int, list[rift_pb2.FecPacket]] = {}
        for _, fec in fecs:
            by_group.setdefault(fec.group_id, []).append(fec)
        for parities in by_group.values():
            fec = parities[0]
            k, m, first = fec.shard_count, fec.parity_count, fec.first_packet_id
            if len(parities) != m or not all(first + i in known for i in range(k)) or m > k:
                continue
            length = len(fec.payload)
            g = gf.generator(k, m)
            rows = list(range(m, k)) + [k + p.parity_index for p in parities]
            have = [known[first + i] for i in range(m, k)] + [p.payload for p in parities]
            decode = gf.invert([g[r] for r in rows])
            for lost in range(m):
                payload = gf.combine(decode[lost], have, length)[: fec.shard_lengths[lost]]
                assert payload == known[first + lost]
                header = transport_header(c.alias, first + lost)
                assert c._recv is not None
                c._recv.decrypt(nonce(first + lost), payload, header)  # InvalidTag if wrong
                rebuilt += 1
        assert rebuilt >= 5
    finally:
        if c.alias and c._send is not None:
            c.disconnect()
        c.close()
