"""The app's LAN list (wavry.desktop.discovery) on a real LAN of the NAT test bed: a host
advertises `_wavry._udp.local.`, the app's search on another machine of that LAN finds it with
the address to connect to, and a machine behind the other router finds nothing."""

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
    ad = LanAdvertiser("den")
    await ad.advertise(sys.argv[1], ["192.168.1.2"], 47801)
    print("advertised" if ad.advertised else "failed", flush=True)
    await asyncio.sleep(30)
asyncio.run(main())
"""

SEARCH = r"""
import asyncio, json
from wavry.desktop.discovery import find_lan_hosts
entries, why = asyncio.run(find_lan_hosts(2.0))
print(json.dumps({"entries": [[e.name, e.wavry_id, e.target] for e in entries], "why": why}))
"""

WAVRY_ID = "B" * 42 + "E"


def test_the_app_lists_hosts_of_this_lan_only() -> None:
    with NatBed(lan_client=True) as bed:
        ad = bed.popen("host", [sys.executable, "-c", ADVERTISE, WAVRY_ID], stdout=-1, text=True)
        assert ad.stdout is not None and ad.stdout.readline().strip() == "advertised"
        r = bed.run("lan", [sys.executable, "-c", SEARCH], timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {
            "entries": [["den", WAVRY_ID, "192.168.1.2:47801"]],
            "why": "",
        }
        r = bed.run("client", [sys.executable, "-c", SEARCH], timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"entries": [], "why": ""}
