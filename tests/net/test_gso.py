"""UDP GSO batching (wavry.net.gso): the receiver gets identical datagrams, in order."""

from __future__ import annotations

import os
import socket

import pytest

from wavry.net.gso import MAX_SEGMENTS, GsoSender, batches, gso_supported


def test_batches_equal_sizes_last_may_be_shorter() -> None:
    d = [b"a" * 10] * 5 + [b"b" * 3] + [b"c" * 10] * 2 + [b"d" * 12]
    got = batches(d)
    assert [len(b) for b in got] == [6, 2, 1]
    assert [x for b in got for x in b] == d
    for b in got:
        assert all(len(x) == len(b[0]) for x in b[:-1]) and len(b[-1]) <= len(b[0])
    many = batches([b"x" * 1400] * 200)
    assert all(len(b) <= MAX_SEGMENTS and sum(map(len, b)) <= 65000 for b in many)
    assert sum(len(b) for b in many) == 200


def _pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setblocking(False)
    return tx, rx


@pytest.mark.parametrize("enabled", [True, False])
def test_receiver_gets_identical_datagrams_in_order(enabled: bool) -> None:
    tx, rx = _pair()
    plain: list[bytes] = []

    def fallback(data: bytes, addr: tuple[str, int]) -> None:
        plain.append(data)
        tx.sendto(data, addr)

    sender = GsoSender(tx, fallback, enabled=enabled)
    # frames as the pacer emits them: full chunks, a short last chunk, parities
    sizes = [1400] * 30 + [700] + [1400] * 2 + [1200] * 3 + [90]
    sent = [os.urandom(n) for n in sizes]
    sender.send_run(sent, rx.getsockname())
    got = [rx.recv(2048) for _ in sent]
    assert got == sent
    if enabled and gso_supported():
        assert sender.gso_calls >= 3 and sender.gso_datagrams >= 30
        assert sender.gso_calls < len(sent) // 4
    else:
        assert sender.gso_calls == 0 and plain == sent
    tx.close()
    rx.close()


def test_falls_back_when_bypass_is_not_safe() -> None:
    tx, rx = _pair()
    plain: list[bytes] = []

    def fallback(data: bytes, addr: tuple[str, int]) -> None:
        plain.append(data)
        tx.sendto(data, addr)

    sender = GsoSender(tx, fallback, can_bypass=lambda: False)
    sent = [bytes([i]) * 1000 for i in range(10)]
    sender.send_run(sent, rx.getsockname())
    assert [rx.recv(2048) for _ in sent] == sent
    assert plain == sent and sender.gso_calls == 0
    tx.close()
    rx.close()
