"""TimestampedUdp: a UDP socket read with the kernel's receive timestamps (real loopback)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from wavry.net.loop import run
from wavry.net.udp import TimestampedUdp, open_udp_timestamped


async def _busy_reader() -> dict[str, Any]:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    got: list[tuple[bytes, float | None, float]] = []
    batches: list[int] = []

    def sink(data: bytes, addr: tuple[Any, ...], arrival: float | None) -> None:
        got.append((data, arrival, time.time()))

    udp = await open_udp_timestamped(
        sink, peer.getsockname(), on_batch=lambda: batches.append(len(got))
    )
    try:
        target = udp.get_extra_info("sockname")
        sent_at = time.time()
        for i in range(10):
            peer.sendto(bytes([i]) * 100, target)
        time.sleep(0.08)  # the loop is busy: the datagrams wait in the socket
        await asyncio.sleep(0.05)
        udp.sendto(b"reply")
        reply = peer.recv(100)
        # an ICMP port-unreachable (the peer went away) must not stop the reader
        peer_addr = peer.getsockname()
        peer.close()
        udp.sendto(b"into the void")
        await asyncio.sleep(0.05)
        errors = udp.receive_errors
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the peer is back
        peer.bind(peer_addr)
        peer.sendto(b"after", target)
        await asyncio.sleep(0.05)
        peer.close()
        return {
            "errors": errors,
            "got": got,
            "batches": batches,
            "sent_at": sent_at,
            "reply": reply,
            "timestamps": udp.timestamps,
            "udp": udp,
        }
    finally:
        udp.close()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_arrival_is_the_kernel_receive_time_not_the_read_time(loop: str) -> None:
    out = run(_busy_reader()) if loop == "uvloop" else asyncio.run(_busy_reader())
    got = out["got"]
    assert out["timestamps"]
    assert [d[:1] for d, _, _ in got[:10]] == [bytes([i]) for i in range(10)]
    out["after"] = [d for d, _, _ in got[10:]]
    got = got[:10]
    for _, arrival, read_at in got:
        assert arrival is not None
        assert out["sent_at"] - 0.01 <= arrival <= out["sent_at"] + 0.03
        # read after the loop's 80 ms of work: the kernel stamp is that much earlier
        assert read_at - arrival >= 0.07
    assert out["batches"][0] == 10  # one readiness callback drained all ten, then one flush
    assert out["errors"] >= 1  # the ICMP error was read and counted, and reading went on
    assert out["after"] == [b"after"]
    assert out["reply"] == b"reply"
    udp: TimestampedUdp = out["udp"]
    assert udp.is_closing()
