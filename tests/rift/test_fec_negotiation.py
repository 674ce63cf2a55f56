"""FEC scheme negotiation (docs/spec/RIFT.md §7): the client offers `Hello.fec_schemes`, the host
answers its first preference among them in `HelloAck.fec_scheme` (XOR when none), and every
`FecPacket` of the session, both ways, carries that scheme."""

from __future__ import annotations

import pytest

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.framing import TransportDatagram, parse_datagram
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback
from wavry.rift.transport import TransportConfig

RS, XOR = rift_pb2.FEC_REED_SOLOMON, rift_pb2.FEC_XOR_INTERLEAVED


@pytest.mark.parametrize(
    ("host_prefs", "client_offer", "expected"),
    [
        ((RS, XOR), (RS, XOR), RS),  # both offer RS: preferred
        ((RS, XOR), (XOR,), XOR),  # the client does not: XOR stays
        ((XOR,), (RS, XOR), XOR),  # the host keeps to XOR
        ((XOR, RS), (RS,), RS),  # the host's first preference that the client offers
        ((RS, XOR), None, XOR),  # FEC off at the client: it offers nothing
    ],
)
def test_scheme_choice_and_every_parity_carries_it(
    host_prefs: tuple[int, ...], client_offer: tuple[int, ...] | None, expected: int
) -> None:
    host_cfg = HostConfig(trust_any=True, transport=TransportConfig(fec_schemes=host_prefs))
    if client_offer is None:
        client_t = TransportConfig(fec=False)
    else:
        client_t = TransportConfig(fec_schemes=client_offer)
    host = HostEndpoint(Identity.generate(), host_cfg)
    client = ClientSession(Identity.generate(), ClientConfig(transport=client_t))
    lb = Loopback(client, host)
    client.connect(1000.0)
    lb.pump(1000.0)
    accepted = [e for e in lb.client_events if isinstance(e, ev.SessionAccepted)]
    assert accepted and accepted[0].ack.fec_scheme == expected
    alias = next(iter(host.sessions))
    assert host.sessions[alias].transport.fec_scheme == expected
    assert client.transport is not None
    assert client.transport.fec_scheme == (expected if client_offer is not None else XOR)

    # a few frames and uplink messages: every parity carries the session's scheme
    seen: list[int] = []
    hs = host.sessions[alias]
    for f in range(6):
        t = 1000.1 + f / 60
        host.send_frame(alias, bytes(9000), t, keyframe=f == 0, timestamp_us=int(t * 1e6))
        for d, _ in host.datagrams_to_send(t + 0.01):
            msg = _open(client, d)
            if msg is not None and msg.media.WhichOneof("content") == "fec":
                seen.append(msg.media.fec.scheme)
            client.receive_datagram(d, t + 0.011)
    assert hs.transport.stats.parity_sent > 0
    assert seen and set(seen) == {expected}


def _open(client: ClientSession, datagram: bytes) -> rift_pb2.Message | None:
    """Decrypt a host datagram with a copy of the client's keys (the client's own channel must
    not mark it as seen)."""
    ch = client.channel
    assert ch is not None
    spy = SecureChannel(ch.alias, ch.send_key, ch.recv_key, ch.max_datagram)
    dg = parse_datagram(datagram)
    if not isinstance(dg, TransportDatagram):
        return None
    return spy.open(dg)
