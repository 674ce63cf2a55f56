"""LAN discovery (docs/spec/CONTROL_PLANE.md §5) on a real LAN of the NAT test bed: a host
advertises `_wavry._udp.local.` with its Wavry ID, `wavry discover` on another machine of that
LAN lists it; a machine behind the other router (another LAN) does not see it."""

from __future__ import annotations

import json
import sys

import pytest

from wavry.bench.netlab.natbed import NatBed, probe

ok, why = probe()
pytestmark = pytest.mark.skipif(not ok, reason=why)

ADVERTISE = r"""
import asyncio, sys
from wavry.connectivity.mdns import LanAdvertiser
async def main():
    ad = LanAdvertiser("studio")
    await ad.advertise(sys.argv[1], ["192.168.1.2"], 47800)
    print("advertised" if ad.advertised else "failed", flush=True)
    await asyncio.sleep(30)
asyncio.run(main())
"""

WAVRY_ID = "A" * 42 + "E"  # a well-formed ID (32 bytes, base64url)


def test_discover_lists_hosts_of_this_lan_only() -> None:
    with NatBed(lan_client=True) as bed:
        ad = bed.popen("host", [sys.executable, "-c", ADVERTISE, WAVRY_ID], stdout=-1, text=True)
        assert ad.stdout is not None and ad.stdout.readline().strip() == "advertised"
        cmd = [sys.executable, "-m", "wavry", "discover", "--seconds", "2", "--json", "-"]
        r = bed.run("lan", cmd, timeout=60)
        assert r.returncode == 0, r.stderr
        found = json.loads(r.stdout)
        assert found == [
            {"name": "studio", "wavry_id": WAVRY_ID, "addresses": ["192.168.1.2"], "port": 47800}
        ]
        r = bed.run("client", cmd, timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout) == []
