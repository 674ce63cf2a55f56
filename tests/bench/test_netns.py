"""Network-namespace harness: veth pair, UDP inside namespaces, tbf rate limits, cleanup."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from wavry.bench.lab_cli import lab_app
from wavry.bench.netlab.netns import NetnsPair, Tbf, probe

OK, REASON = probe()

ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(10)
data, addr = s.recvfrom(2048)
s.sendto(data.upper(), addr)
print(addr[0], flush=True)
"""

PING = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"hello wavry", (sys.argv[1], int(sys.argv[2])))
data, addr = s.recvfrom(2048)
print(data.decode(), addr[0])
"""

SINK = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(10)
total, first, last = 0, None, None
while True:
    try:
        data = s.recv(65535)
    except OSError:
        break
    last = time.monotonic()
    if first is None:
        first = last
        s.settimeout(0.5)
    total += len(data)
print(total, (last or 0.0) - (first or 0.0), flush=True)
"""

BLAST = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
buf, sent = b"x" * 1200, 0
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        s.send(buf)
        sent += 1
    except OSError:
        pass
    if sent % 4 == 0:
        time.sleep(0.0005)
print(sent, flush=True)
"""


BLAST_GSO = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, 1100)  # UDP_SEGMENT: one 3-datagram GSO skb per send
s.connect((sys.argv[1], int(sys.argv[2])))
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        s.send(b"x" * 3300)
    except OSError:
        pass
    time.sleep(0.002)
"""


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def start_server(pair: NetnsPair, script: str, port: int) -> subprocess.Popen[str]:
    proc = pair.popen(
        "b",
        [sys.executable, "-I", "-c", script, pair.addr("b"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def measure_kbps(pair: NetnsPair, seconds: float = 1.0) -> tuple[float, int, int]:
    """Blast UDP from a to b; return (received kbit/s, datagrams sent, bytes received)."""
    sink = start_server(pair, SINK, 5001)
    sent = int(
        pair.run(
            "a", [sys.executable, "-I", "-c", BLAST, pair.addr("b"), "5001", str(seconds)]
        ).stdout
    )
    out, _ = sink.communicate(timeout=15)
    total, span = out.split()
    return int(total) * 8 / max(float(span), 1e-3) / 1000, sent, int(total)


def test_probe_returns_reason() -> None:
    ok, reason = probe()
    assert isinstance(ok, bool) and reason


def test_probe_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    ok, reason = probe()
    assert not ok and "root" in reason


def test_tbf_arguments() -> None:
    assert Tbf(2000).tc_args() == ["rate", "2000000bit", "burst", "3200", "latency", "50000us"]
    big = Tbf(100_000, limit_bytes=50_000)
    assert big.tc_args() == ["rate", "100000000bit", "burst", "50000", "limit", "50000"]
    for bad in (
        {"rate_kbps": 0},
        {"rate_kbps": 1, "burst_bytes": 100},
        {"rate_kbps": 1, "limit_bytes": 0},
    ):
        with pytest.raises(ValueError):
            Tbf(**bad)


def test_cli_netns_probe() -> None:
    result = CliRunner().invoke(lab_app, ["netns-probe"])
    assert result.exit_code == (0 if OK else 1)
    # the reason names the namespaces it tried, which differ from call to call
    assert re.sub(r"wv\d+n\d+p", "NS", REASON) in re.sub(r"wv\d+n\d+p", "NS", result.output)


@pytest.mark.netns
@pytest.mark.skipif(not OK, reason=REASON)
def test_pair_udp_exchange_and_cleanup() -> None:
    with NetnsPair() as pair:
        names = set(pair.names.values())
        assert names <= netns_names()
        addrs = pair.run("a", ["ip", "-o", "-4", "addr", "show", "dev", pair.dev("a")]).stdout
        assert f"{pair.addr('a')}/24" in addrs
        assert pair.addr("b") == f"10.77.{pair.subnet}.2"
        server = start_server(pair, ECHO, 5000)
        reply = pair.run("a", [sys.executable, "-I", "-c", PING, pair.addr("b"), "5000"]).stdout
        assert reply.split() == ["HELLO", "WAVRY", pair.addr("b")]
        out, _ = server.communicate(timeout=10)
        assert out.strip() == pair.addr("a")
        host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert pair.dev("a") + "@" not in host_links  # nothing was added to the host
    assert not names & netns_names()


@pytest.mark.netns
@pytest.mark.skipif(not OK, reason=REASON)
def test_cleanup_on_exception_and_popen_killed() -> None:
    with pytest.raises(RuntimeError, match="boom"), NetnsPair() as pair:
        names = set(pair.names.values())
        sleeper = pair.popen("a", ["sleep", "30"])
        raise RuntimeError("boom")
    assert sleeper.poll() is not None
    assert not names & netns_names()
    pair.close()  # idempotent


@pytest.mark.netns
@pytest.mark.skipif(not OK, reason=REASON)
def test_tbf_limits_throughput_and_set_rate() -> None:
    with NetnsPair(tbf_a=Tbf(2000)) as pair:
        kbps, sent, total = measure_kbps(pair)
        assert 0.6 * 2000 <= kbps <= 1.3 * 2000, (kbps, sent, total)
        assert sent * 1200 > 3 * total  # the sender offered far more than got through
        pair.set_rate("a", 500)
        assert "rate 500Kbit" in pair.qdisc_stats("a")
        kbps, sent, total = measure_kbps(pair)
        assert 0.6 * 500 <= kbps <= 1.3 * 500, (kbps, sent, total)
        pair.set_tbf("a", None)
        assert "tbf" not in pair.qdisc_stats("a")


@pytest.mark.netns
@pytest.mark.skipif(not OK, reason=REASON)
def test_lowering_the_rate_under_gso_traffic_keeps_the_link_flowing() -> None:
    """A GSO skb of 3 datagrams (3 × 1142 B on the wire) fits the 8 Mbit/s bucket (4000 B) and
    is queued whole; had `set_rate` shrunk the bucket to the 4 Mbit/s default (3200 B), tbf could
    never send it and the link would stall until the next change."""
    with NetnsPair(tbf_a=Tbf(8000)) as pair:
        assert "burst 4000b" in pair.qdisc_stats("a")
        sink = start_server(pair, SINK, 5002)
        blast = pair.popen(
            "a", [sys.executable, "-I", "-c", BLAST_GSO, pair.addr("b"), "5002", "2.0"]
        )
        try:
            time.sleep(0.5)  # the queue is full of whole GSO skbs by now
            pair.set_rate("a", 4000)
            assert "rate 4Mbit" in pair.qdisc_stats("a")
            assert "burst 4000b" in pair.qdisc_stats("a")  # the bucket never shrinks
            blast.wait(timeout=10)
        finally:
            blast.kill()
        out, _ = sink.communicate(timeout=15)
    total, span = out.split()
    # 0.5 s at 8 Mbit/s, then 1.5 s at 4 Mbit/s: ~1.2 MB; a stalled link gets ~0.5 MB
    assert float(span) >= 1.7
    assert int(total) >= 0.8 * (0.5 * 1_000_000 + 1.5 * 500_000)
