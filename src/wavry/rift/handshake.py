"""RIFT handshake messages (docs/spec/RIFT.md §2): Noise XX in handshake datagrams with identity
proofs."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from wavry.rift import rift_pb2
from wavry.rift.framing import HANDSHAKE_HEADER_LEN, encode_handshake_header
from wavry.rift.identity import Identity, verify_static_key_signature, wavry_id_from_public_key
from wavry.rift.noise import NoiseHandshakeFailed, NoiseXX, generate_static_key, x25519_public

MAX_NAME_BYTES = 64
EPHEMERAL_LEN = 32
COOKIE_LEN = 16
#: msg1's Noise payload (+, docs/spec/RIFT.md §2): empty (unpadded), or a kind byte and a body.
#: Kind 0: padding only (every byte zero); kind 1: the host's cookie follows, then zero bytes.
MSG1_KIND_PADDING = 0
MSG1_KIND_COOKIE = 1
#: what our clients pad msg1 to (whole datagram): 3 x 128 bytes covers the largest msg2 (298
#: bytes with a 64-byte host name), so the host may answer the first msg1 at once (§2,
#: amplification)
MSG1_PADDED_LEN = 128


class HandshakeError(Exception):
    """The peer's handshake failed verification; the attempt must be aborted."""


@dataclass(frozen=True)
class LocalStatic:
    """A Noise static key bound to a long-term identity by a signature (computed once)."""

    identity: Identity
    private: bytes
    public: bytes
    signature: bytes
    name: str

    @classmethod
    def create(cls, identity: Identity, static_private: bytes, name: str) -> LocalStatic:
        public = x25519_public(static_private)
        clipped = name.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore")
        return cls(identity, static_private, public, identity.sign_static_key(public), clipped)

    def payload(self, session_alias: int = 0) -> bytes:
        return rift_pb2.HandshakePayload(
            identity_key=self.identity.public_key,
            identity_sig=self.signature,
            session_alias=session_alias,
            name=self.name,
        ).SerializeToString()


@dataclass(frozen=True)
class PeerIdentity:
    wavry_id: str
    identity_key: bytes
    name: str
    session_alias: int


def verify_peer_payload(noise: NoiseXX, payload: bytes) -> PeerIdentity:
    """Check HandshakePayload: a valid Ed25519 signature over the peer's Noise static key."""
    msg = rift_pb2.HandshakePayload()
    try:
        msg.ParseFromString(payload)
    except DecodeError as exc:
        raise HandshakeError("handshake payload is not a HandshakePayload") from exc
    remote_static = noise.remote_static
    if remote_static is None:
        raise HandshakeError("peer static key missing")
    if len(msg.identity_key) != 32 or not verify_static_key_signature(
        msg.identity_key, msg.identity_sig, remote_static
    ):
        raise HandshakeError("peer identity proof does not verify")
    name_bytes = msg.name.encode("utf-8")
    if len(name_bytes) > MAX_NAME_BYTES:
        raise HandshakeError("peer name longer than 64 bytes")
    return PeerIdentity(
        wavry_id=wavry_id_from_public_key(msg.identity_key),
        identity_key=msg.identity_key,
        name=msg.name,
        session_alias=msg.session_alias,
    )


def handshake_datagram(handshake_id: bytes, number: int, noise_message: bytes) -> bytes:
    return encode_handshake_header(handshake_id, number) + noise_message


def msg1_payload(cookie: bytes | None = None, datagram_len: int = MSG1_PADDED_LEN) -> bytes:
    """The Noise payload of msg1: padding to `datagram_len`, with the cookie when there is one
    (0: unpadded and without cookie, as before this profile)."""
    room = max(0, datagram_len - HANDSHAKE_HEADER_LEN - EPHEMERAL_LEN)
    if cookie is None:
        return bytes(room)
    if len(cookie) != COOKIE_LEN:
        raise ValueError("a cookie is 16 bytes")
    head = bytes([MSG1_KIND_COOKIE]) + cookie
    return head + bytes(max(0, room - len(head)))


def msg1_cookie(noise_message: bytes) -> bytes | None:
    """The cookie a msg1 carries (its Noise payload is cleartext: msg1 has no key yet), if any."""
    if (
        len(noise_message) >= EPHEMERAL_LEN + 1 + COOKIE_LEN
        and noise_message[EPHEMERAL_LEN] == MSG1_KIND_COOKIE
    ):
        return noise_message[EPHEMERAL_LEN + 1 : EPHEMERAL_LEN + 1 + COOKIE_LEN]
    return None


class InitiatorHandshake:
    """Client side: msg1 out, msg2 in (verify host), msg3 out."""

    def __init__(
        self,
        local: LocalStatic,
        handshake_id: bytes,
        cookie: bytes | None = None,
        pad_to: int = MSG1_PADDED_LEN,
    ) -> None:
        self.local = local
        self.handshake_id = handshake_id
        self._noise = NoiseXX(initiator=True, static_private=local.private)
        payload = msg1_payload(cookie, pad_to)
        self.msg1 = handshake_datagram(handshake_id, 1, self._noise.write_message(payload))
        self.msg3: bytes | None = None
        self.peer: PeerIdentity | None = None

    def on_msg2(self, noise_message: bytes) -> PeerIdentity:
        if self.msg3 is not None:
            raise HandshakeError("duplicate msg2")
        try:
            payload = self._noise.read_message(noise_message)
        except NoiseHandshakeFailed as exc:
            raise HandshakeError(f"msg2 rejected: {exc}") from exc
        peer = verify_peer_payload(self._noise, payload)
        if peer.session_alias == 0:
            raise HandshakeError("host sent no session alias")
        self.msg3 = handshake_datagram(
            self.handshake_id, 3, self._noise.write_message(self.local.payload())
        )
        self.peer = peer
        return peer

    @property
    def handshake_hash(self) -> bytes:
        return self._noise.handshake_hash

    def split(self) -> tuple[bytes, bytes]:
        return self._noise.split()


class ResponderHandshake:
    """Host side: msg1 in, msg2 out (cached for duplicates), msg3 in (verify client).

    The handshake id travels in clear, so anyone who saw msg1 can send a forged msg3. A failed
    msg3 must not kill the genuine handshake, but a failed Noise read leaves the library's state
    advanced. So the responder keeps its ephemeral key and msg1 and rebuilds the exact same
    post-msg2 state (same msg2 bytes) after a failed msg3, at most `MAX_MSG3_FAILURES` times.
    """

    MAX_MSG3_FAILURES = 4

    def __init__(self, local: LocalStatic, handshake_id: bytes, alias: int, msg1: bytes) -> None:
        self.handshake_id = handshake_id
        self.alias = alias
        self._local = local
        self._msg1 = bytes(msg1)
        self._ephemeral = generate_static_key()  # an X25519 key like any other
        self.failures = 0
        self._noise = self._replay_to_msg2()
        self.msg2 = self._msg2

    def _replay_to_msg2(self) -> NoiseXX:
        noise = NoiseXX(False, self._local.private, ephemeral_private=self._ephemeral)
        try:
            noise.read_message(self._msg1)
            msg2 = noise.write_message(self._local.payload(self.alias))
        except NoiseHandshakeFailed as exc:
            raise HandshakeError(f"msg1 rejected: {exc}") from exc
        self._msg2 = handshake_datagram(self.handshake_id, 2, msg2)
        return noise

    @property
    def exhausted(self) -> bool:
        return self.failures >= self.MAX_MSG3_FAILURES

    def on_msg3(self, noise_message: bytes) -> PeerIdentity:
        try:
            payload = self._noise.read_message(noise_message)
            return verify_peer_payload(self._noise, payload)
        except (NoiseHandshakeFailed, HandshakeError) as exc:
            self.failures += 1
            if not self.exhausted:
                self._noise = self._replay_to_msg2()
            raise HandshakeError(f"msg3 rejected: {exc}") from exc

    @property
    def handshake_hash(self) -> bytes:
        return self._noise.handshake_hash

    def split(self) -> tuple[bytes, bytes]:
        return self._noise.split()
