"""Events a RIFT session core hands to its adapter (`next_event()`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any

from wavry.rift import rift_pb2
from wavry.rift.transport_types import TransportEvent

Address = tuple[Any, ...]


class DisconnectReason(IntEnum):
    """`Disconnect.reason` values (docs/spec/RIFT.md leaves the numbering to the profile; see
    docs)."""

    UNSPECIFIED = 0
    USER = 1
    SHUTDOWN = 2
    REPLACED = 3
    TIMEOUT = 4
    NOT_TRUSTED = 5
    PROTOCOL_ERROR = 6
    SESSION_LIMIT = 7


class CloseKind(IntEnum):
    """Why a client session ended for good (no further reconnects)."""

    USER = 0
    PEER_DISCONNECT = 1
    CONNECT_FAILED = 2
    IDENTITY_MISMATCH = 3
    HANDSHAKE_FAILED = 4
    REJECTED = 5
    RECONNECT_FAILED = 6
    PROTOCOL_ERROR = 7


# ---- client side -------------------------------------------------------------------------


class ClientState(Enum):
    """Where a client session is (`ClientSession.state`)."""

    IDLE = "idle"
    HANDSHAKE = "handshake"
    HELLO = "hello"
    PAIRING = "pairing"
    ACTIVE = "active"
    RECONNECT_WAIT = "reconnect_wait"
    CLOSED = "closed"


@dataclass(frozen=True)
class HandshakeCompleted:
    host_id: str
    host_name: str
    duration_s: float
    handshake_hash: bytes


@dataclass(frozen=True)
class SessionAccepted:
    ack: rift_pb2.HelloAck
    reconnected: bool


@dataclass(frozen=True)
class SessionRejected:
    reason: int
    message: str


@dataclass(frozen=True)
class PairingFinished:
    ok: bool
    message: str


@dataclass(frozen=True)
class PongReceived:
    timestamp_us: int
    rtt_s: float
    sample_offset_s: float
    clock_offset_s: float


@dataclass(frozen=True)
class MessageReceived:
    message: rift_pb2.Message


@dataclass(frozen=True)
class LinkStalled:
    silence_s: float


@dataclass(frozen=True)
class LinkResumed:
    silence_s: float


@dataclass(frozen=True)
class Reconnecting:
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True)
class SessionClosed:
    kind: CloseKind
    message: str
    peer_reason: int = 0


# ---- host side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientConnected:
    alias: int
    client_id: str
    name: str
    addr: Address


@dataclass(frozen=True)
class ClientAccepted:
    alias: int
    client_id: str
    hello: rift_pb2.Hello
    ack: rift_pb2.HelloAck


@dataclass(frozen=True)
class ClientRejected:
    alias: int
    client_id: str
    reason: int
    message: str


@dataclass(frozen=True)
class PairingCodeIssued:
    code: str
    expires_at: float


@dataclass(frozen=True)
class DevicePaired:
    client_id: str
    name: str


@dataclass(frozen=True)
class PairingAttemptFailed:
    client_id: str
    attempts_left: int


@dataclass(frozen=True)
class ClientMessage:
    alias: int
    message: rift_pb2.Message


@dataclass(frozen=True)
class ClientMigrated:
    alias: int
    old_addr: Address
    new_addr: Address


@dataclass(frozen=True)
class ClientStalled:
    alias: int
    silence_s: float


@dataclass(frozen=True)
class ClientGone:
    """A host session ended; the runtime must release everything the client held."""

    alias: int
    client_id: str
    reason: DisconnectReason
    message: str


@dataclass(frozen=True)
class ClientTransportEvent:
    """A media-transport event of one host session (keyframe request, rate change, stats)."""

    alias: int
    event: TransportEvent


ClientEvent = (
    TransportEvent
    | HandshakeCompleted
    | SessionAccepted
    | SessionRejected
    | PairingFinished
    | PongReceived
    | MessageReceived
    | LinkStalled
    | LinkResumed
    | Reconnecting
    | SessionClosed
)
HostEvent = (
    ClientTransportEvent
    | ClientConnected
    | ClientAccepted
    | ClientRejected
    | PairingCodeIssued
    | DevicePaired
    | PairingAttemptFailed
    | ClientMessage
    | ClientMigrated
    | ClientStalled
    | ClientGone
)
