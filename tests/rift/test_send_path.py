"""What leaves a sender: every parity it computes, packet ids without holes, and the one
backlog-skip decision (issue 14 item 7), through real sessions on the scripted `Loopback`."""

from __future__ import annotations

import pytest

from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.congestion import CongestionDecision, CongestionState
from wavry.rift.framing import TransportDatagram, parse_datagram
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.redundancy import GroupPlan
from wavry.rift.testing.loopback import Loopback
from wavry.rift.transport import FrameReady

T0 = 5000.0


def session() -> tuple[HostEndpoint, ClientSession, Loopback, int]:
    host = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
    client = ClientSession(Identity.generate(), ClientConfig())
    lb = Loopback(client, host)
    client.connect(T0)
    lb.pump(T0)
    return host, client, lb, next(iter(host.sessions))


def pid_of(data: bytes) -> int:
    return int.from_bytes(data[8:16], "big")


def fec_packets(datagrams: list[bytes], receiver: SecureChannel) -> list[rift_pb2.FecPacket]:
    """The FEC packets among `datagrams`, opened with a copy of the receiver's keys."""
    ch = SecureChannel(receiver.alias, receiver.send_key, receiver.recv_key, 1400)
    out = []
    for d in datagrams:
        dgram = parse_datagram(d)
        assert isinstance(dgram, TransportDatagram)
        msg = ch.open(dgram)
        assert msg is not None
        if msg.HasField("media") and msg.media.HasField("fec"):
            out.append(msg.media.fec)
    return out


def test_every_parity_a_group_closed_by_a_message_computes_is_sent() -> None:
    """35 input messages at once on the client's uplink (k = 32): the 32nd closes a group and
    its two parities leave right behind it (they used to be sealed and dropped)."""
    host, client, _, alias = session()
    tr = client.transport
    assert tr is not None and tr.sender.fec_encoder is not None
    encoder = tr.sender.fec_encoder
    assert encoder.k == 32 and encoder.m == 2
    before = encoder.stats.parity_packets
    now = T0 + 0.1
    client.datagrams_to_send(now)  # anything left from the set-up
    for i in range(35):
        key = rift_pb2.Key(keycode=30, pressed=i % 2 == 0)
        client.send_message(rift_pb2.Message(input=rift_pb2.InputMessage(key=key)))
    wire = client.datagrams_to_send(now)
    computed = encoder.stats.parity_packets - before
    assert computed >= 2
    sent = fec_packets(wire, host.sessions[alias].channel)
    assert len(sent) == computed
    assert tr.stats.parity_sent == encoder.stats.parity_packets
    ids = [pid_of(d) for d in wire]
    assert ids == sorted(ids) == list(range(ids[0], ids[0] + len(ids)))  # no id skipped


@pytest.mark.pure
def test_a_video_group_closed_by_a_pong_keeps_its_parities() -> None:
    """Pings answered while a frame is paced: every parity the host computes is on the wire,
    whichever datagram closed its group."""
    host, client, lb, alias = session()
    encoder = host.sessions[alias].transport.media.fec_encoder
    assert encoder is not None
    # short groups, one parity each: pongs sent mid-frame close many of them
    media = host.sessions[alias].transport.media
    media.redundancy.frame_plan = lambda n, keyframe: GroupPlan(5, (0, 1, 1, 1, 1, 1))  # type: ignore[method-assign]
    before = encoder.stats.parity_packets
    now = T0 + 0.1
    start = len(lb.to_client)
    for n in range(30):
        host.send_frame(alias, bytes(20_000), now, keyframe=n == 0, timestamp_us=n + 1)
        for _ in range(4):
            client.ping(now)
            now = lb.run_until(now, now + 0.004, step=0.001)
    now = lb.run_until(now, now + 0.2, step=0.001)
    wire = lb.to_client[start:]
    computed = encoder.stats.parity_packets - before
    assert client.channel is not None
    sent = fec_packets(wire, client.channel)
    assert computed > 100
    assert len(sent) == computed
    pongs = sum(1 for e in lb.client_events if type(e).__name__ == "PongReceived")
    assert pongs >= 100


class _Bottleneck:
    """A congestion controller that reports a 2 Mbit/s bottleneck (the interface only)."""

    decision = CongestionDecision(1800, 60, 2000, CongestionState.STABLE, capacity_kbps=2000.0)

    def on_packet_sent(self, packet_id: int, size_bytes: int, now: float) -> None:
        pass

    def on_feedback(self, arrivals: object, now: float) -> CongestionDecision:
        return self.decision

    def on_rtt_sample(self, rtt_s: float, now: float) -> None:
        pass

    def set_send_overhead(self, ratio: float) -> None:
        pass

    def tick(self, now: float) -> CongestionDecision:
        return self.decision

    def poll_congestion_control(self) -> None:
        return None


def test_frames_the_pacer_drops_spend_no_packet_ids() -> None:
    """6 Mbit/s of frames into a pacer capped at a 2 Mbit/s bottleneck: frames go stale and are
    dropped, and the client on this lossless path still sees every id from the first to the
    last (no hole for its NACK tracker to chase)."""
    host, client, lb, alias = session()
    sender = host.sessions[alias].transport.media
    sender.controller = _Bottleneck()
    now = T0 + 0.1
    start = len(lb.to_client)
    for n in range(60):
        host.send_frame(alias, bytes(12_500), now, keyframe=n == 0, timestamp_us=n + 1)
        now = lb.run_until(now, now + 1 / 60, step=0.001)
    now = lb.run_until(now, now + 0.5, step=0.001)
    assert sender.pacer.dropped_frames >= 10  # stale frames were dropped at the sender
    ids = sorted(pid_of(d) for d in lb.to_client[start:])
    assert ids == list(range(ids[0], ids[-1] + 1))
    tr = client.transport
    assert tr is not None
    assert tr.stats.nacks_sent == 0 and tr.nack.missing_ids == []
    frames = [e for e in lb.client_events if isinstance(e, FrameReady)]
    assert len(frames) + sender.pacer.dropped_frames >= 55


def test_should_skip_frame_is_one_decision_that_counts_real_skips() -> None:
    host, _, lb, alias = session()
    tr = host.sessions[alias].transport
    tr.media.pacer.set_rate_cap(4000, 6000)  # a known 4 Mbit/s bottleneck
    now = T0 + 0.1
    assert not host.should_skip_frame(now)
    host.send_frame(alias, bytes(100_000), now, keyframe=True, timestamp_us=1)
    assert host.should_skip_frame(now)
    assert host.should_skip_frame(now + 0.001, [alias])
    assert not host.should_skip_frame(now, [alias + 1])  # not that session
    assert tr.stats.frames_skipped_backlog == 2
    now = lb.run_until(now, now + 0.3, step=0.002)
    assert not host.should_skip_frame(now)
    assert tr.stats.frames_skipped_backlog == 2


def test_the_net_bench_skips_with_the_hosts_decision() -> None:
    """`wavry bench net` measures the product's backlog skip, not a copy of it."""
    from wavry.bench.net_worker import HostRole, Variant

    role = HostRole(Variant("wavry"), 1.0)
    host = role.endpoint
    client = ClientSession(Identity.generate(), ClientConfig())
    lb = Loopback(client, host)
    client.connect(T0)
    lb.pump(T0)
    role.alias = alias = next(iter(host.sessions))
    tr = host.sessions[alias].transport
    tr.media.pacer.set_rate_cap(4000, 6000)
    host.send_frame(alias, bytes(100_000), T0 + 0.1, keyframe=True, timestamp_us=1)
    assert role._backlogged(T0 + 0.1)
    assert tr.stats.frames_skipped_backlog == 1


def test_a_paced_frame_is_one_fec_group() -> None:
    """Chunks sealed as the pacer releases them over several ms still form one group per frame
    (the encoder's 5 ms timer is for sparse input, not for a frame being paced)."""
    host, _, lb, alias = session()
    sender = host.sessions[alias].transport.media
    sender.pacer.set_clean_path(None)  # a path that showed a queue: paced over half a frame
    encoder = sender.fec_encoder
    assert encoder is not None
    before = encoder.stats.groups_closed
    now = T0 + 0.1
    host.send_frame(alias, bytes(60_000), now, keyframe=True, timestamp_us=1)  # ~48 chunks
    lb.run_until(now, now + 0.05, step=0.0005)
    groups = encoder.stats.groups_closed - before
    assert groups == 2  # 48 chunks in groups of at most 32, none cut by the timer
