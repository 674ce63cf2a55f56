"""Tunables of the RIFT session core. Times are seconds."""

from __future__ import annotations

from dataclasses import dataclass, field

from wavry import __version__
from wavry.rift import rift_pb2
from wavry.rift.framing import DEFAULT_MAX_DATAGRAM, MIN_MAX_DATAGRAM
from wavry.rift.transport_types import TransportConfig

PROTOCOL_VERSION = 1


@dataclass
class TimingConfig:
    msg1_initial_retry_s: float = 0.25
    msg1_max_retry_s: float = 2.0
    handshake_timeout_s: float = 10.0
    # a session not yet accepted is freed this long after its handshake without a Hello, or
    # after the host asked for pairing without a pairing (pings do not keep it)
    hello_wait_s: float = 5.0
    pairing_wait_s: float = 60.0
    # address migration (docs/spec/RIFT.md §3): a new path is challenged with a Ping at most this
    # often; without a Pong from there, media moves only after the old path was silent this long
    path_challenge_every_s: float = 0.5
    unvalidated_move_after_s: float = 2.0
    hello_retry_s: float = 0.2
    hello_timeout_s: float = 10.0
    ping_interval_s: float = 0.5
    # ... but the first `start_pings` Pings after the host accepts go this often: the first can
    # meet a host busy starting the stream, and the clock offset needs a quick round trip
    start_ping_interval_s: float = 0.1
    start_pings: int = 5
    stall_after_s: float = 3.0
    lost_after_s: float = 10.0
    disconnect_repeats: int = 3
    max_session_age_s: float = 24 * 3600.0
    reconnect_initial_s: float = 0.25
    reconnect_max_delay_s: float = 8.0
    reconnect_give_up_s: float = 300.0


@dataclass
class ClientConfig:
    name: str = "wavry-client"
    platform: int = rift_pb2.LINUX
    supported_codecs: list[int] = field(default_factory=lambda: [rift_pb2.H264])
    max_width: int = 1920
    max_height: int = 1080
    max_fps: int = 60
    input_caps: int = 0
    max_datagram: int = DEFAULT_MAX_DATAGRAM
    auto_reconnect: bool = True
    timing: TimingConfig = field(default_factory=TimingConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)

    def __post_init__(self) -> None:
        check_max_datagram(self.max_datagram)


@dataclass
class HostConfig:
    name: str = "wavry-host"
    # NAME/VERSION in an accepted HelloAck's `message` (docs/spec/RIFT.md §4): informational only
    software: str = f"wavry/{__version__}"
    codecs: list[int] = field(default_factory=lambda: [rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1])
    width: int = 1920
    height: int = 1080
    fps: int = 60
    initial_bitrate_kbps: int = 8000
    keyframe_interval_ms: int = 2000
    max_clients: int = 8
    max_datagram: int = DEFAULT_MAX_DATAGRAM
    trust_any: bool = False
    # The stream takes the size the client states in Hello.max_resolution (a virtual display
    # made for it) instead of scaling width x height down to fit it.
    follow_client_size: bool = False
    # Abuse limits: new handshakes per source IP (token bucket) and in flight overall.
    handshake_rate_per_ip: float = 10.0
    handshake_burst_per_ip: float = 20.0
    handshake_rate_total: float = 1000.0
    max_pending_handshakes: int = 1024
    max_tracked_sources: int = 4096
    # Sessions not accepted yet (waiting for Hello or pairing): in total and per source address
    # (IPv6 by /64); a new one beyond either bound replaces the oldest (docs/security.md).
    max_untrusted_sessions: int = 64
    max_untrusted_per_source: int = 4
    # handshake tokens a source loses when one of its sessions is freed without being accepted
    # (replaced by the bounds above, or no Hello/pairing in time): handshake-only sessions
    # cost their source most of its handshake rate, accepted clients pay nothing
    untrusted_penalty: float = 5.0
    # Admission (docs/spec/RIFT.md §2): cookies while this many handshakes are in flight (or
    # half the global handshake budget is spent); their replies are rate-limited too.
    cookies: bool = True
    cookie_pending_threshold: int = 128
    cookie_rate_per_ip: float = 5.0
    cookie_rate_total: float = 4000.0
    max_msg2_resends: int = 3
    timing: TimingConfig = field(default_factory=TimingConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)

    def __post_init__(self) -> None:
        check_max_datagram(self.max_datagram)


def check_max_datagram(size: int) -> None:
    if not MIN_MAX_DATAGRAM <= size <= 65507:
        raise ValueError(f"maximum datagram size must be in {MIN_MAX_DATAGRAM}..65507, got {size}")
