"""ClientConnection over real loopback sockets: a batch handler receives events synchronously,
one list per flush, with frames complete as soon as their last chunk is read; events queued
before the handler is set are delivered first; removing it restores the queue."""

from __future__ import annotations

import asyncio
from typing import cast

from tests.net.hostside import AcceptingHost
from wavry.net.client import ClientConnection
from wavry.net.loop import run
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.rift.events import ClientEvent, SessionAccepted
from wavry.rift.identity import Identity
from wavry.rift.transport import FrameReady

FRAMES = 40


async def _session() -> dict[str, object]:
    side = AcceptingHost()
    host = side.server
    addr = await side.start()
    client = ClientConnection(ClientSession(Identity.generate(), ClientConfig()))
    await client.start(*addr)
    alias = await side.wait_accepted()
    first = await client.next_event(5)  # handshake events arrive through the queue
    batches: list[list[ClientEvent]] = []
    nested: list[int] = []

    def handler(batch: list[ClientEvent]) -> None:
        batches.append(batch)
        if any(isinstance(e, FrameReady) for e in batch):
            # the handler may send (a nested flush); its own events still come in order
            nested.append(client.ping() or 0)

    client.set_batch_handler(handler)
    queued_first = [e for b in batches for e in b]  # events queued before the handler
    loop = asyncio.get_running_loop()
    ids = []
    for n in range(FRAMES):
        data = bytes([n]) * (12_000 + 97 * n)  # about 9 datagrams + FEC parities
        ids.append(
            host.core.send_frame(
                alias, data, host._clock(), keyframe=n == 0, timestamp_us=int(loop.time() * 1e6)
            )
        )
        host.flush()
        await asyncio.sleep(1 / 120)
    for _ in range(100):
        got = [e.frame.frame_id for b in batches for e in b if isinstance(e, FrameReady)]
        if got and got[-1] == ids[-1]:
            break
        await asyncio.sleep(0.02)
    client.set_batch_handler(None)
    host.send_message(alias, rift_pb2.Message(control=rift_pb2.ControlMessage()))
    after = await client.next_event(5)  # the queue is back
    await client.close()
    await host.close()
    return {
        "first": first,
        "queued_first": queued_first,
        "batches": batches,
        "ids": ids,
        "nested": nested,
        "after": after,
    }


def test_batch_handler_gets_frames_synchronously_and_in_order() -> None:
    out = run(_session())
    batches = cast(list[list[ClientEvent]], out["batches"])
    ids = cast(list[int], out["ids"])
    frames = [e for b in batches for e in b if isinstance(e, FrameReady)]
    assert [f.frame.frame_id for f in frames] == ids  # every frame, in order, none twice
    for f in frames:
        n = f.frame.frame_id - ids[0]
        assert f.frame.data == bytes([n]) * (12_000 + 97 * n)
    # a frame is handed over as soon as its last chunk is read: never two in one batch
    assert all(sum(isinstance(e, FrameReady) for e in b) <= 1 for b in batches)
    assert len(cast(list[int], out["nested"])) == len(frames)
    assert out["after"] is not None  # the queue is back once the handler is removed
    # the handshake's events went through the queue before the handler existed
    early = [out["first"], *cast(list[ClientEvent], out["queued_first"])]
    assert any(isinstance(e, SessionAccepted) for e in early)
