"""UPnP-IGD port mapping against a real router daemon (miniupnpd, nftables) in the NAT bed: the
host behind a port-restricted NAT asks for its RIFT port, the mapping lets a datagram from a
machine it never talked to reach it, and removing the mapping closes the door again."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from wavry.bench.netlab.natbed import NatBed, probe

ok, why = probe()
pytestmark = [
    pytest.mark.skipif(not ok, reason=why),
    pytest.mark.skipif(shutil.which("miniupnpd") is None, reason="miniupnpd not installed"),
]

# behind the NAT: map UDP 47800, wait for one datagram from the internet, remove the mapping,
# wait for another (which must not come)
HOST = r"""
import socket, sys
from wavry.connectivity.portmap import map_port
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 47800)); s.settimeout(3)
m = map_port(47800, discover_ms=1500)
print("mapped", m.external if m else None, flush=True)
try:
    print("got", s.recv(100).decode(), flush=True)
except socket.timeout:
    print("got nothing", flush=True)
m.remove()
print("removed", flush=True)
try:
    print("got", s.recv(100).decode(), flush=True)
except socket.timeout:
    print("got nothing", flush=True)
"""

SEND = r"""
import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[1].encode(), ("11.200.1.2", 47800))
"""


def test_port_mapping_opens_and_closes_the_router(tmp_path: Path) -> None:
    with NatBed() as bed:
        upnp = bed.start_upnp("ra", str(tmp_path))
        time.sleep(0.5)
        host = bed.popen("host", [sys.executable, "-c", HOST], stdout=-1, text=True)
        assert host.stdout is not None
        line = host.stdout.readline()
        assert line.strip() == "mapped ('11.200.1.2', 47800)", (line, upnp.poll())
        assert bed.run("inet", [sys.executable, "-c", SEND, "hello"]).returncode == 0
        assert host.stdout.readline().strip() == "got hello"
        assert host.stdout.readline().strip() == "removed"
        time.sleep(0.2)
        bed.run("inet", [sys.executable, "-c", SEND, "again"])
        assert host.stdout.readline().strip() == "got nothing"
