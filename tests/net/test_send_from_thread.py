"""HostServer.send_frame_threadsafe over real loopback sockets: an encoder thread hands frames to
the transport without waiting for the event loop. The datagrams leave while the loop is busy,
and the client assembles every frame intact, in order."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.net.hostside import AcceptingHost
from wavry.net.client import ClientConnection
from wavry.net.loop import run
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.rift.identity import Identity
from wavry.rift.transport import FrameReady

FRAMES = 20


def _frame(n: int) -> bytes:
    return bytes([n]) * (9_000 + 131 * n)


async def _session() -> dict[str, object]:
    side = AcceptingHost()
    host = side.server
    addr = await side.start()
    client = ClientConnection(ClientSession(Identity.generate(), ClientConfig()))
    await client.start(*addr)
    alias = await side.wait_accepted()
    got: list[FrameReady] = []
    client.set_batch_handler(
        lambda batch: got.extend(e for e in batch if isinstance(e, FrameReady))
    )
    await asyncio.sleep(0.1)

    # one frame while the host's loop is blocked: the thread's datagrams still leave at once
    sent_while_blocked: list[int] = []
    ids: list[int | None] = []

    def encoder_once() -> None:
        before = host.datagrams_sent
        ids.append(host.send_frame_threadsafe(alias, _frame(0), keyframe=True, timestamp_us=1))
        sent_while_blocked.append(host.datagrams_sent - before)

    worker = threading.Thread(target=encoder_once)
    worker.start()
    worker.join(5)
    time.sleep(0.05)  # the loop is still blocked here (this coroutine holds it)

    def encoder_rest() -> None:
        for n in range(1, FRAMES):
            ids.append(
                host.send_frame_threadsafe(
                    alias, _frame(n), keyframe=False, timestamp_us=1 + n, capture_us=1
                )
            )
            time.sleep(1 / 60)

    assert host.sends_from_thread(alias)  # a plain UDP peer: its frames leave from this thread
    skip = [host.should_skip_frame_threadsafe([alias])]  # the encoder asks, same lock, no hop
    worker = threading.Thread(target=encoder_rest)
    worker.start()
    while worker.is_alive():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    await client.close()
    await host.close()
    gone = host.send_frame_threadsafe(alias, b"x", keyframe=False, timestamp_us=0)
    assert not host.sends_from_thread(alias)  # no session any more
    return {"got": got, "ids": ids, "blocked": sent_while_blocked, "gone": gone, "skip": skip}


def test_frames_sent_from_another_thread_leave_without_the_loop() -> None:
    out = run(_session())
    blocked = out["blocked"]
    # the first datagrams left at once (the pacer spreads the rest on the loop's timer until
    # the path is known to be clean)
    assert isinstance(blocked, list) and blocked[0] >= 3
    ids = out["ids"]
    assert isinstance(ids, list) and None not in ids and ids == sorted(ids)
    got = out["got"]
    assert isinstance(got, list)
    assert [f.frame.frame_id for f in got] == ids
    for n, f in enumerate(got):
        assert f.frame.data == _frame(n)
    assert out["gone"] is None  # after close: refused, no exception
    assert out["skip"] in ([True], [False])
