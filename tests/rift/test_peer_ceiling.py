"""The client's CongestionControl is a ceiling the host's sender honours (RIFT.md §8)."""

from __future__ import annotations

from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.congestion import FixedRateController
from wavry.rift.delta import DeltaController
from wavry.rift.events import ClientTransportEvent
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback
from wavry.rift.transport import RateChanged

T0 = 100.0


def test_delta_never_targets_above_the_receivers_ceiling_and_lifts_it_back() -> None:
    delta = DeltaController(8000, max_fps=60)
    delta.set_ceiling(2000, 30)
    assert delta.decision.target_bitrate_kbps <= 2000 and delta.decision.target_fps == 30
    delta.set_ceiling(None, None)
    assert delta.decision.target_fps == 60
    fixed = FixedRateController(8000, 60)
    fixed.set_ceiling(3000, 0)
    assert (fixed.decision.target_bitrate_kbps, fixed.decision.target_fps) == (3000, 60)


def test_a_clients_congestion_control_caps_the_hosts_encoder_target() -> None:
    config = HostConfig(trust_any=True)
    config.transport.initial_bitrate_kbps = 8000
    host = HostEndpoint(Identity.generate(), config)
    client = ClientSession(Identity.generate(), ClientConfig())
    lb = Loopback(client, host)
    client.connect(T0)
    lb.pump(T0)
    alias = next(iter(host.sessions))
    cc = rift_pb2.CongestionControl(target_bitrate_kbps=1500, target_fps=24)
    client.send_message(rift_pb2.Message(control=rift_pb2.ControlMessage(congestion=cc)))
    lb.pump(T0 + 0.01)
    rates = [
        e.event
        for e in lb.host_events
        if isinstance(e, ClientTransportEvent) and isinstance(e.event, RateChanged)
    ]
    assert rates and rates[-1].target_bitrate_kbps <= 1500 and rates[-1].target_fps == 24
    assert host.sessions[alias].transport.decision.target_bitrate_kbps <= 1500
    lb.run_until(T0 + 0.01, T0 + 3.0)  # feedback keeps coming: the ceiling holds
    assert host.sessions[alias].transport.decision.target_bitrate_kbps <= 1500
