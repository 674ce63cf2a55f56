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


async def _gso_run_read(gro: bool) -> tuple[list[bytes], list[float | None], int, bool]:
    from wavry.net.gso import GsoSender, gso_supported

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    got: list[bytes] = []
    stamps: list[float | None] = []

    def sink(data: bytes, addr: tuple[Any, ...], arrival: float | None) -> None:
        got.append(data)
        stamps.append(arrival)

    udp = await open_udp_timestamped(sink, peer.getsockname(), gro=gro)
    try:
        target = udp.get_extra_info("sockname")
        run_ = [bytes([i]) * 1200 for i in range(20)] + [b"tail" * 30]  # last one shorter
        sender = GsoSender(peer, lambda d, a: peer.sendto(d, a))
        assert gso_supported()
        sender.send_run(run_, target)
        await asyncio.sleep(0.05)
        assert got == run_  # identical and in order, whichever way they were read
        return got, stamps, udp.reads, udp.gro
    finally:
        udp.close()
        peer.close()


def test_a_gso_run_is_read_in_one_go_with_gro() -> None:
    """A frame's chunks sent with one UDP_SEGMENT sendmsg arrive in one read (UDP_GRO) and are
    split back into the same datagrams, all stamped with the run's arrival time."""
    got, stamps, reads, gro = run(_gso_run_read(True))
    assert gro
    assert reads < len(got) / 4  # coalesced: far fewer reads than datagrams
    assert all(s is not None for s in stamps)
    got, _, reads, gro = run(_gso_run_read(False))
    assert not gro and reads == len(got)  # without GRO: one read per datagram
