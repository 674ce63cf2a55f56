"""The version where users and operators see it: `wavry --version`, an accepted HelloAck's
`message` (docs/spec/RIFT.md §4) and the gateway's `/health` (tests/release/test_images.py checks
it against the container; here against a process)."""

from __future__ import annotations

import subprocess
import sys

import httpx

import wavry
from tests.gateway.conftest import launch_gateway
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback


def test_cli_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wavry", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == f"wavry {wavry.__version__}"


def _accept(host: HostEndpoint) -> list[ev.SessionAccepted | ev.SessionRejected]:
    client = ClientSession(Identity.generate(), ClientConfig())
    lb = Loopback(client, host)
    client.connect(1000.0)
    lb.pump(1000.0)
    return [e for e in lb.client_events if isinstance(e, ev.SessionAccepted | ev.SessionRejected)]


def test_accepted_hello_ack_names_the_host_software() -> None:
    [accepted] = _accept(HostEndpoint(Identity.generate(), HostConfig(trust_any=True)))
    assert isinstance(accepted, ev.SessionAccepted)
    assert accepted.ack.message == f"wavry/{wavry.__version__}"
    # a reject keeps its human text there
    [rejected] = _accept(HostEndpoint(Identity.generate(), HostConfig(trust_any=False)))
    assert isinstance(rejected, ev.SessionRejected)
    assert rejected.reason == rift_pb2.PAIRING_REQUIRED and "pairing code" in rejected.message


def test_gateway_health_names_the_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gw = launch_gateway(tmp_path)
    try:
        health = httpx.get(gw.url + "/health", timeout=10).json()
    finally:
        gw.stop()
    assert health == {"status": "ok", "version": wavry.__version__}
