"""An established RIFT session's secure channel: seal outgoing, authenticate incoming."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from google.protobuf.message import DecodeError

from wavry.rift import rift_pb2
from wavry.rift.crypto import ReplayWindow, TransportOpener, TransportSealer, pack_nonce
from wavry.rift.framing import AEAD_TAG_LEN, TRANSPORT_HEADER_LEN, TransportDatagram


class MessageTooLarge(ValueError):
    """A message that does not fit in one datagram of the session's maximum size."""


@dataclass
class ChannelCounters:
    sent: int = 0
    received: int = 0
    replayed: int = 0
    auth_failed: int = 0
    malformed: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass
class SecureChannel:
    """Send and receive keys, packet ids and the replay window of one session (docs/spec/RIFT.md
    §3)."""

    alias: int
    send_key: bytes
    recv_key: bytes
    max_datagram: int
    replay_size: int = 4096
    counters: ChannelCounters = field(default_factory=ChannelCounters)
    _sealer: TransportSealer = field(init=False)
    _opener: TransportOpener = field(init=False)
    _replay: ReplayWindow = field(init=False)

    def __post_init__(self) -> None:
        self._sealer = TransportSealer(self.send_key, self.alias)
        self._opener = TransportOpener(self.recv_key)
        self._replay = ReplayWindow(self.replay_size)

    @property
    def max_plaintext(self) -> int:
        return self.max_datagram - TRANSPORT_HEADER_LEN - AEAD_TAG_LEN

    @property
    def next_packet_id(self) -> int:
        return self._sealer.next_packet_id

    def seal(self, message: rift_pb2.Message) -> tuple[int, bytes]:
        plaintext = message.SerializeToString()
        if len(plaintext) > self.max_plaintext:
            raise MessageTooLarge(
                f"message of {len(plaintext)} bytes exceeds the {self.max_plaintext}-byte budget"
            )
        return self.seal_bytes(plaintext)

    def seal_bytes(self, plaintext: bytes) -> tuple[int, bytes]:
        pid, datagram = self._sealer.seal(plaintext)
        self.counters.sent += 1
        self.counters.bytes_sent += len(datagram)
        return pid, datagram

    def open_bytes(self, dgram: TransportDatagram) -> bytes | None:
        """Replay check, authenticate and decrypt; None (state unchanged) on failure."""
        pid = dgram.packet_id
        replay = self._replay
        counters = self.counters
        if pid <= replay.highest and not replay.check(pid):  # above the highest: new
            counters.replayed += 1
            return None
        payload = dgram.payload
        try:
            plaintext = self._opener.decrypt(pack_nonce(pid), payload, dgram.header)
        except InvalidTag:
            counters.auth_failed += 1
            return None
        replay.mark(pid)
        counters.received += 1
        counters.bytes_received += TRANSPORT_HEADER_LEN + len(payload)
        return plaintext

    def open(self, dgram: TransportDatagram) -> rift_pb2.Message | None:
        """Authenticate, replay-check and parse one datagram; None (state unchanged) on failure."""
        plaintext = self.open_bytes(dgram)
        if plaintext is None:
            return None
        msg = rift_pb2.Message()
        try:
            msg.ParseFromString(plaintext)
        except DecodeError:
            # Authentic but unparseable: a peer bug. The id stays marked (it was authentic).
            self.counters.malformed += 1
            return None
        return msg
