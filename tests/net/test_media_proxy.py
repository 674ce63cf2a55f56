"""Video through the real asyncio adapters and the impairment proxy (2 % loss each way).

Asserts delivery (FEC + NACK repair everything in time), never timing.
"""

from __future__ import annotations

import asyncio

from tests.net.hostside import AcceptingHost
from wavry.bench.netlab import ImpairmentProxy, LinkConfig
from wavry.net.client import ClientConnection
from wavry.net.host import HostServer
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.rift.identity import Identity
from wavry.rift.transport import FrameReady

FRAMES = 150


async def _stream() -> tuple[list[int], list[tuple[int, bytes]], HostServer]:
    side = AcceptingHost()
    host = side.server
    addr = await side.start()
    link = LinkConfig(delay_ms=5, loss=0.02)
    presented: list[tuple[int, bytes]] = []

    def on_client(e: object) -> None:
        if isinstance(e, FrameReady):
            presented.append((e.frame.frame_id, e.frame.data))

    async with ImpairmentProxy(("127.0.0.1", 0), addr, link, link, seed=7) as proxy:
        client = ClientConnection(ClientSession(Identity.generate(), ClientConfig()), on_client)
        await client.start(*proxy.address)
        alias = await side.wait_accepted()
        loop = asyncio.get_running_loop()
        ids = []
        for n in range(FRAMES):
            now = loop.time()
            data = bytes([n % 251]) * (6000 + 50 * (n % 40))
            ids.append(
                host.core.send_frame(
                    alias, data, host._clock(), keyframe=n == 0, timestamp_us=int(now * 1e6)
                )
            )
            host.flush()
            await asyncio.sleep(1 / 60)
        for _ in range(100):  # until the tail is repaired
            if presented and presented[-1][0] == ids[-1]:
                break
            await asyncio.sleep(0.02)
        assert proxy.stats.down.dropped_loss > 0
        await client.close()
    await host.close()
    return ids, presented, host


def test_frames_delivered_through_lossy_proxy() -> None:
    ids, presented, host = asyncio.run(_stream())
    got = [fid for fid, _ in presented]
    assert got == sorted(got)  # never an older frame after a newer one
    assert len(got) >= 0.97 * len(ids)
    assert got[-1] == ids[-1]
    for fid, data in presented:
        n = fid - ids[0]
        assert data == bytes([n % 251]) * (6000 + 50 * (n % 40))
    assert host.datagrams_sent > len(ids) * 5
