"""Reach a machine by name through real NATs (docs/spec/CONTROL_PLANE.md §6): `wavry gateway`
and `wavry relay` on the bed's internet, an account made with `wavry register`/`wavry login` on
both machines, `wavry host --gateway URL --name studio --source synthetic` behind router A and
`wavry connect studio --gateway URL --headless --seconds N --stats-json F` behind router B.

Every test streams video and checks frames were presented at the stream's rate, the path the
client reports, and — from the routers' own conntrack — which way the bytes really went: straight
between the two routers, or through the relay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wavry.bench.netlab.natbed import SERVICES, NatBed, NatType, probe
from wavry.bench.netlab.services import Service, start_gateway, start_relay, wait_ready

ok, why = probe()
pytestmark = [pytest.mark.skipif(not ok, reason=why), pytest.mark.slow]

URL = f"http://{SERVICES}:3000"
PASSWORD = "correct horse battery staple"
FPS = 30
MEDIA_BYTES = 200_000  # what a few seconds of video at least weigh
STRAY_BYTES = 60_000  # probes, checks, relay bindings: what a path that carries no media may see


@dataclass
class World:
    bed: NatBed
    home: Path
    gateway: Service
    relay: Service

    def env(self, site: str) -> dict[str, str]:
        return {**os.environ, "XDG_CONFIG_HOME": str(self.home / site), "WAVRY_PASSWORD": PASSWORD}

    def wavry(self, site: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.bed.run(
            site, [sys.executable, "-m", "wavry", *args], env=self.env(site), timeout=timeout
        )  # type: ignore[arg-type]

    def start_host(self) -> Service:
        argv = [
            sys.executable, "-m", "wavry", "host", "--gateway", URL, "--name", "studio",
            "--source", "synthetic", "--size", "320x180", "--fps", str(FPS), "--no-upnp",
        ]  # fmt: skip
        proc = self.bed.popen(
            "host", argv, env=self.env("host"), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        host = Service(proc)
        host.wait_for(r"online at .* as 'studio'", timeout=60)
        return host

    def connect(self, seconds: float, stats: Path) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "wavry", "connect", "studio", "--gateway", URL,
                "--headless", "--seconds", str(seconds), "--stats-json", str(stats),
                "--no-live-stats"]  # fmt: skip
        return self.bed.popen(
            "client", argv, env=self.env("client"), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def session(
        self, host_nat: NatType, client_nat: NatType, seconds: float, tmp: Path, cut: bool = False
    ) -> tuple[dict[str, Any], Service, subprocess.Popen[str]]:
        """Set the routers, start the host, run a client: (stats, host, finished client)."""
        self.bed.set_nat("ra", host_nat)
        self.bed.set_nat("rb", client_nat)
        self.bed.cut_direct(cut)
        host = self.start_host()
        stats = tmp / "stats.json"
        client = self.connect(seconds, stats)
        return _finish(client, stats, seconds), host, client


def _finish(client: subprocess.Popen[str], stats: Path, seconds: float) -> dict[str, Any]:
    _out, err = client.communicate(timeout=seconds + 60)
    assert client.returncode == 0, err
    data: dict[str, Any] = json.loads(stats.read_text())
    return data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("nat")
    with NatBed() as bed:
        # leases of 65 s: a relayed session renews its lease 5 s after binding (60 s ahead)
        gw = start_gateway(
            home / "gw", SERVICES, 3000, netns=bed.ns["inet"], env={"WAVRY_GATEWAY_LEASE_TTL": "65"}
        )
        relay: Service | None = None
        w: World | None = None
        try:
            wait_ready(URL, bed.ns["inet"])
            relay = start_relay(URL, SERVICES, 4000, netns=bed.ns["inet"])
            w = World(bed, home, gw, relay)
            r = w.wavry("host", "register", URL, "--username", "alice", "--email", "a@example.org")
            assert r.returncode == 0, r.stderr
            r = w.wavry("client", "login", URL, "--login", "alice")
            assert r.returncode == 0, r.stderr
            yield w
        finally:
            if relay is not None:
                relay.stop()
            if w is not None:
                w.gateway.stop()  # a test may have restarted it: the one running now
            gw.stop()


def _presented_at_rate(stats: dict[str, Any], seconds: float) -> None:
    # the synthetic source changes every frame: nearly every frame of the session is shown
    assert stats["frames_presented"] >= FPS * seconds * 0.6, stats


def _direct(world: World) -> None:
    for router in ("ra", "rb"):
        assert world.bed.direct_bytes(router) > MEDIA_BYTES, world.bed.flows(router)
        assert world.bed.service_bytes(router, 4000) < STRAY_BYTES, world.bed.flows(router)


def _relayed(world: World) -> None:
    for router in ("ra", "rb"):
        assert world.bed.service_bytes(router, 4000) > MEDIA_BYTES, world.bed.flows(router)
        assert world.bed.direct_bytes(router) < STRAY_BYTES, world.bed.flows(router)


@pytest.mark.parametrize(
    ("host_nat", "client_nat", "path"),
    [
        (NatType.port_restricted, NatType.port_restricted, "punched"),
        (NatType.address_restricted, NatType.symmetric, "punched"),
        (NatType.symmetric, NatType.symmetric, "relayed"),
        (NatType.port_restricted, NatType.symmetric, "relayed"),
    ],
)
def test_path_through_nats(
    world: World, tmp_path: Path, host_nat: NatType, client_nat: NatType, path: str
) -> None:
    seconds = 4.0
    stats, host, _ = world.session(host_nat, client_nat, seconds, tmp_path)
    try:
        _presented_at_rate(stats, seconds)
        assert stats["path"] == path, stats
        assert [c["path"] for c in stats["path_changes"]] == [path]
        assert (stats["relay_id"] is not None) is (path == "relayed")
        assert stats["time_to_first_frame_ms"] < (4000 if path == "relayed" else 2500), stats
        if path == "relayed":
            _relayed(world)
        else:
            _direct(world)
    finally:
        host.stop()


def test_relayed_session_moves_to_direct_when_the_routers_allow_it(
    world: World, tmp_path: Path
) -> None:
    world.bed.set_nat("ra", NatType.port_restricted)
    world.bed.set_nat("rb", NatType.port_restricted)
    world.bed.cut_direct(True)
    host = world.start_host()
    stats_file = tmp_path / "stats.json"
    seconds = 13.0
    client = world.connect(seconds, stats_file)
    try:
        host.wait_for(r"session \w+ accepted", timeout=30)
        time.sleep(3.0)  # relayed by now (fallback at 1.5 s)
        opened = time.monotonic()
        world.bed.cut_direct(False)
        stats = _finish(client, stats_file, seconds)
        kinds = [c["path"] for c in stats["path_changes"]]
        assert kinds == ["relayed", "punched"], stats
        moved = stats["path_changes"][1]
        # one monotonic clock on this machine: the client moved within 6 s of the opening
        assert 0 < moved["monotonic_s"] - opened <= 6.0, (opened, moved)
        assert moved["gap_ms"] is not None and moved["gap_ms"] <= 100.0, moved
        _presented_at_rate(stats, seconds)
    finally:
        host.stop()


def test_punched_session_moves_to_the_relay_when_the_direct_path_is_cut(
    world: World, tmp_path: Path
) -> None:
    world.bed.set_nat("ra", NatType.port_restricted)
    world.bed.set_nat("rb", NatType.port_restricted)
    world.bed.cut_direct(False)
    host = world.start_host()
    stats_file = tmp_path / "stats.json"
    seconds = 8.0
    client = world.connect(seconds, stats_file)
    try:
        host.wait_for(r"session \w+ accepted", timeout=30)
        time.sleep(2.0)
        world.bed.cut_direct(True)
        cut = time.monotonic()
        stats = _finish(client, stats_file, seconds)
        kinds = [c["path"] for c in stats["path_changes"]]
        assert kinds == ["punched", "relayed"], stats
        assert 0 < stats["path_changes"][1]["monotonic_s"] - cut <= 2.0, (cut, stats)
        _presented_at_rate(stats, seconds - 2.5)
    finally:
        host.stop()
        world.bed.cut_direct(False)


def test_gateway_restart_leaves_the_session_and_the_host_comes_back(
    world: World, tmp_path: Path
) -> None:
    world.bed.set_nat("ra", NatType.port_restricted)
    world.bed.set_nat("rb", NatType.port_restricted)
    world.bed.cut_direct(False)
    host = world.start_host()
    stats_file = tmp_path / "stats.json"
    seconds = 12.0
    client = world.connect(seconds, stats_file)
    try:
        host.wait_for(r"session \w+ accepted", timeout=30)
        world.gateway.stop()
        host.wait_for(r"gateway connection lost", timeout=10)
        world.gateway = start_gateway(
            world.home / "gw", SERVICES, 3000, netns=world.bed.ns["inet"],
            env={"WAVRY_GATEWAY_LEASE_TTL": "65"},
        )  # fmt: skip
        back = time.monotonic()  # the new gateway listens (its own start takes seconds here)
        host.wait_for(r"back online at", timeout=20)
        assert time.monotonic() - back < 10.0
        stats = _finish(client, stats_file, seconds)
        _presented_at_rate(stats, seconds)
        assert [c["path"] for c in stats["path_changes"]] == ["punched"]
    finally:
        host.stop()


def test_a_relayed_session_renews_its_lease(world: World, tmp_path: Path) -> None:
    """Leases here last 65 s: the client asks for a fresh one 5 s after binding (a minute
    ahead), both peers renew with it, and the relayed stream goes on without a hitch."""
    seconds = 10.0
    stats, host, _ = world.session(NatType.symmetric, NatType.symmetric, seconds, tmp_path)
    try:
        assert stats["path"] == "relayed" and len(stats["path_changes"]) == 1, stats
        assert stats["relay_grants"] >= 2, stats
        _presented_at_rate(stats, seconds)
    finally:
        host.stop()
