"""RIFT transport encryption (docs/spec/RIFT.md §3) and the replay window."""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wavry.rift.framing import encode_transport_header

# A sender must never let the counter reach 2^63 (docs/spec/RIFT.md §3).
MAX_PACKET_ID = (1 << 63) - 1
REPLAY_WINDOW_SIZE = 4096
_NONCE = struct.Struct("<4xQ")


class NonceExhausted(RuntimeError):
    """The packet-id counter reached its limit: the session must be re-established."""


def nonce_for(packet_id: int) -> bytes:
    """12-byte ChaCha20-Poly1305 nonce: four zero bytes then LE64(packet id)."""
    return _NONCE.pack(packet_id)


class TransportSealer:
    """Encrypts one direction of a session; owns that direction's packet-id counter."""

    __slots__ = ("_aead", "_alias", "_next_id")

    def __init__(self, key: bytes, alias: int) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._alias = alias
        self._next_id = 1

    @property
    def next_packet_id(self) -> int:
        return self._next_id

    def seal(self, plaintext: bytes) -> tuple[int, bytes]:
        """Return (packet id, datagram) for one new transport datagram."""
        pid = self._next_id
        if pid >= MAX_PACKET_ID:
            raise NonceExhausted("packet id limit reached; re-establish the session")
        self._next_id = pid + 1
        header = encode_transport_header(self._alias, pid)
        return pid, header + self._aead.encrypt(_NONCE.pack(pid), plaintext, header)


class TransportOpener:
    """Decrypts one direction of a session. Stateless apart from the key: replay is separate."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def open(self, header: bytes, packet_id: int, ciphertext: bytes) -> bytes | None:
        """Plaintext, or None when the tag does not verify."""
        try:
            return self._aead.decrypt(_NONCE.pack(packet_id), ciphertext, header)
        except InvalidTag:
            return None


class ReplayWindow:
    """Highest authenticated id plus a bitmap of the `size` ids below it (docs/spec/RIFT.md §3).

    `check` runs before decryption and changes nothing; `mark` runs only after the tag verified.
    The bitmap is one Python int: bit i set means id (highest - i) was seen.
    """

    __slots__ = ("_bits", "_highest", "_mask", "size")

    def __init__(self, size: int = REPLAY_WINDOW_SIZE) -> None:
        if size < 2048:
            raise ValueError("replay window must cover at least 2048 ids")
        self.size = size
        self._highest = 0
        self._bits = 0
        self._mask = (1 << size) - 1

    @property
    def highest(self) -> int:
        return self._highest

    def check(self, packet_id: int) -> bool:
        """True if packet_id may be new (not yet seen and not below the window)."""
        if packet_id <= 0:
            return False
        if packet_id > self._highest:
            return True
        offset = self._highest - packet_id
        if offset >= self.size:
            return False
        return not (self._bits >> offset) & 1

    def mark(self, packet_id: int) -> None:
        if packet_id > self._highest:
            shift = packet_id - self._highest
            self._bits = ((self._bits << shift) | 1) & self._mask if shift < self.size else 1
            self._highest = packet_id
        else:
            self._bits |= 1 << (self._highest - packet_id)
