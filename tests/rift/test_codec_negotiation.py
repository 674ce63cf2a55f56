"""Codec negotiation (docs/spec/RIFT.md §4): the host's first preference that the client can
decode."""

from __future__ import annotations

import itertools

import pytest

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback

ALL = [rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1]
HOST_PREFS = [list(p) for p in itertools.permutations(ALL)] + [[rift_pb2.H264]]
CLIENT_OFFERS = [[]] + [list(c) for n in (1, 2, 3) for c in itertools.combinations(ALL, n)]


@pytest.mark.parametrize("host_prefs", HOST_PREFS)
@pytest.mark.parametrize("offer", CLIENT_OFFERS)
def test_matrix(host_prefs: list[int], offer: list[int]) -> None:
    host = HostEndpoint(Identity.generate(), HostConfig(trust_any=True, codecs=host_prefs))
    client = ClientSession(Identity.generate(), ClientConfig(supported_codecs=offer))
    lb = Loopback(client, host)
    client.connect(1000.0)
    lb.pump(1000.0)
    accepted = [e for e in lb.client_events if isinstance(e, ev.SessionAccepted)]
    rejected = [e for e in lb.client_events if isinstance(e, ev.SessionRejected)]
    if not offer:  # not stated: the host's first choice
        assert accepted and accepted[0].ack.selected_codec == host_prefs[0]
        return
    expected = next((c for c in host_prefs if c in offer), None)
    if expected is None:
        assert rejected and rejected[0].reason == rift_pb2.NO_COMMON_CODEC
    else:
        assert accepted and accepted[0].ack.selected_codec == expected
