"""RIFT transport encryption (docs/spec/RIFT.md §3) and the replay window."""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wavry.rift.framing import transport_header_encoder

# A sender must never let the counter reach 2^63 (docs/spec/RIFT.md §3).
MAX_PACKET_ID = (1 << 63) - 1
REPLAY_WINDOW_SIZE = 4096
_NONCE = struct.Struct("<4xQ")


class NonceExhausted(Exception):
    """The packet-id counter reached its limit: the session must be re-established."""


#: the nonce of a packet id, as bytes (`nonce_for` without the call)
pack_nonce = _NONCE.pack


def nonce_for(packet_id: int) -> bytes:
    """12-byte ChaCha20-Poly1305 nonce: four zero bytes then LE64(packet id)."""
    return _NONCE.pack(packet_id)


class TransportSealer:
    """Encrypts one direction of a session; owns that direction's packet-id counter."""

    __slots__ = ("_encrypt", "_header", "_next_id")

    def __init__(self, key: bytes, alias: int) -> None:
        self._encrypt = ChaCha20Poly1305(key).encrypt
        self._header = transport_header_encoder(alias)
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
        header = self._header(pid)
        return pid, header + self._encrypt(_NONCE.pack(pid), plaintext, header)


class TransportOpener:
    """Decrypts one direction of a session. Stateless apart from the key: replay is separate."""

    __slots__ = ("decrypt",)

    def __init__(self, key: bytes) -> None:
        #: ChaCha20-Poly1305 decrypt(nonce, ciphertext, aad), raising InvalidTag (for callers
        #: on the per-datagram path, which save a call by using it directly)
        self.decrypt = ChaCha20Poly1305(key).decrypt

    def open(self, header: bytes, packet_id: int, ciphertext: bytes) -> bytes | None:
        """Plaintext, or None when the tag does not verify."""
        try:
            return self.decrypt(_NONCE.pack(packet_id), ciphertext, header)
        except InvalidTag:
            return None


class ReplayWindow:
    """Highest authenticated id plus which of the `size` ids below it were seen
    (docs/spec/RIFT.md §3).

    `check` runs before decryption and changes nothing; `mark` runs only after the tag verified.
    The window is a ring of `size` bytes, slot `id % size` for each id of the window (they are
    `size` consecutive ids, so no two share a slot): marking the next id is one byte store, where
    a bitmap held in one Python int reallocated `size` bits per datagram.
    """

    __slots__ = ("_ring", "highest", "size")

    def __init__(self, size: int = REPLAY_WINDOW_SIZE) -> None:
        if size < 2048:
            raise ValueError("replay window must cover at least 2048 ids")
        self.size = size
        #: the highest authenticated id (0: none yet); read-only for callers
        self.highest = 0
        self._ring = bytearray(size)

    def check(self, packet_id: int) -> bool:
        """True if packet_id may be new (not yet seen and not below the window)."""
        if packet_id <= 0:
            return False
        highest = self.highest
        if packet_id > highest:
            return True
        if highest - packet_id >= self.size:
            return False
        return not self._ring[packet_id % self.size]

    def mark(self, packet_id: int) -> None:
        highest, size, ring = self.highest, self.size, self._ring
        if packet_id > highest:
            shift = packet_id - highest
            if shift >= size:
                ring[:] = bytes(size)
            elif shift > 1:
                # the ids skipped over: their slots held ids that just left the window
                start, end = (highest + 1) % size, packet_id % size
                if start < end:
                    ring[start:end] = bytes(end - start)
                else:
                    ring[start:] = bytes(size - start)
                    ring[:end] = bytes(end)
            self.highest = packet_id
        elif highest - packet_id >= size:
            return  # below the window: `check` refuses it anyway
        ring[packet_id % size] = 1
