"""The NAT test bed behaves like the routers it models: mapping (port kept, or a new port per
destination) and filtering (by address and port, by address, or none), seen with plain UDP
sockets before any Wavry code runs on it."""

from __future__ import annotations

import json
import sys
import time

import pytest

from wavry.bench.netlab.natbed import NatBed, NatType, probe

ok, why = probe()
pytestmark = pytest.mark.skipif(not ok, reason=why)

# A UDP endpoint on the internet: answers each datagram with the address it came from, from
# the port it arrived at; on "poke H P" it sends from a third, never-used port to H:P.
SERVER = r"""
import json, select, socket, sys
socks = []
for port in (5000, 5001, 5002):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("11.200.0.1", port))
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, addr = s.recvfrom(2048)
        if data.startswith(b"poke"):
            _, h, p = data.decode().split()
            socks[2].sendto(b"unsolicited", (h, int(p)))
        else:
            s.sendto(json.dumps(addr).encode(), addr)
"""

# From behind the NAT: one socket asks ports 5000 and 5001 where it is seen, asks for a poke
# from port 5002 (never contacted) and reports whether it arrived.
CLIENT = r"""
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 40000)); s.settimeout(1)
seen = []
for port in (5000, 5001):
    s.sendto(b"where", ("11.200.0.1", port)); seen.append(json.loads(s.recv(2048)))
s.sendto(("poke %s %d" % tuple(seen[0])).encode(), ("11.200.0.1", 5000))
try:
    got = s.recv(2048) == b"unsolicited"
except socket.timeout:
    got = False
print(json.dumps({"seen": seen, "poked": got}))
"""


def _observe(nat: NatType) -> dict[str, object]:
    with NatBed(host_nat=nat) as bed:
        server = bed.popen("inet", [sys.executable, "-c", SERVER], stdout=-1, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        r = bed.run("host", [sys.executable, "-c", CLIENT], timeout=20)
        assert r.returncode == 0, r.stderr
        result: dict[str, object] = json.loads(r.stdout)
        result["flows"] = bed.flows("ra")
        return result


@pytest.mark.parametrize(
    ("nat", "same_port", "poked"),
    [
        (NatType.port_restricted, True, False),
        (NatType.address_restricted, True, True),
        (NatType.symmetric, False, False),
    ],
)
def test_nat_types(nat: NatType, same_port: bool, poked: bool) -> None:
    t0 = time.monotonic()
    got = _observe(nat)
    seen = got["seen"]
    assert isinstance(seen, list)
    assert seen[0][0] == seen[1][0] == NatBed.wan("ra")  # masqueraded behind the WAN address
    assert (seen[0][1] == seen[1][1]) is same_port, seen
    if same_port:
        assert seen[0][1] == 40000  # the source port is kept
    assert got["poked"] is poked
    flows = got["flows"]
    assert isinstance(flows, list)
    assert any(f.dst == ("11.200.0.1", 5000) and f.packets >= 2 for f in flows), flows
    assert time.monotonic() - t0 < 20
