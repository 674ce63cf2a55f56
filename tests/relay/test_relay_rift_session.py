"""A full RIFT session (handshake, Hello, video) between two processes through `RelayServer`.

`wavry host` and `wavry connect` run as separate processes and speak plain RIFT to local
RelayTunnel ports; the tunnels present their leases and wrap FORWARD headers. The relay never
sees anything but encrypted datagrams, and a lease for the wrong role gets nowhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from pathlib import Path

import pytest

from wavry.controlplane.lease import LeaseSigner, LeaseVerifier, generate_private_key
from wavry.relay.server import RelayConfig, RelayServer
from wavry.relay.tunnel import RelayRejected, RelayTunnel
from wavry.relay.wire import Role
from wavry.rift.identity import Identity

RELAY_ID = "relay-e2e"


async def _start_host(home: Path) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wavry", "host", "--listen", "127.0.0.1:0", "--trust", "any",
        "--source", "synthetic", "--size", "320x180", "--fps", "30",
        env=dict(os.environ, XDG_CONFIG_HOME=str(home)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, "host exited"
        if m := re.search(r"listening on udp://127\.0\.0\.1:(\d+)", line):
            return proc, int(m.group(1))


def test_rift_session_through_relay(tmp_path: Path) -> None:
    async def run() -> None:
        signer = LeaseSigner(generate_private_key())
        verifier = LeaseVerifier({signer.kid: signer.public_key}, RELAY_ID)
        relay = RelayServer(RelayConfig(relay_id=RELAY_ID), verifier)
        relay_addr = await relay.start("127.0.0.1", 0)
        host, host_port = await _start_host(tmp_path / "host")
        sid = uuid.uuid4()
        keys = {Role.CLIENT: Identity.generate(), Role.HOST: Identity.generate()}

        def lease(role: Role) -> str:
            return str(
                signer.mint(
                    keys[role].wavry_id, sid, role.claim, RELAY_ID,
                    slimit_kbps=20000, hlimit_kbps=40000,
                )
            )  # fmt: skip

        # a lease for the wrong role is refused before anything is forwarded
        bogus = RelayTunnel(relay_addr, sid, Role.HOST, lease(Role.CLIENT), keys[Role.CLIENT])
        with pytest.raises(RelayRejected):
            await bogus.start()

        host_tunnel = RelayTunnel(
            relay_addr,
            sid,
            Role.HOST,
            lease(Role.HOST),
            keys[Role.HOST],
            app_addr=("127.0.0.1", host_port),
        )
        await host_tunnel.start()
        client_tunnel = RelayTunnel(
            relay_addr, sid, Role.CLIENT, lease(Role.CLIENT), keys[Role.CLIENT]
        )
        local = await client_tunnel.start()
        stats = tmp_path / "stats.json"
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{local[1]}", "--headless",
            "--seconds", "3", "--stats-json", str(stats),
            env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "client")),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _out, err = await asyncio.wait_for(client.communicate(), 60)
        try:
            assert client.returncode == 0, err.decode()
            data = json.loads(stats.read_text())
            assert data["frames_presented"] > 30, data
            assert client_tunnel.stats.to_relay > 50 and client_tunnel.stats.from_relay > 50
            assert host_tunnel.stats.from_relay > 50 and host_tunnel.stats.to_relay > 50
            assert relay.stats.packets_forwarded >= client_tunnel.stats.to_relay
            # each tunnel proved its address once (its keep-alives come from the same one)
            assert client_tunnel.stats.challenges == host_tunnel.stats.challenges == 1
        finally:
            host.terminate()
            await host.wait()
            host_tunnel.close()
            client_tunnel.close()
            relay.close()

    asyncio.run(run())
