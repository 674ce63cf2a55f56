"""HostServer.send_frame_threadsafe for a session whose address the side channel owns (a
relayed path, wavry.connectivity): the encoder's thread must not send those datagrams through
the raw socket (a relay route is no UDP address); they leave from the loop through the side
channel, intact and in order, as a carrier's do.

The side channel here is the narrowest stand-in for a relay: a loopback forwarder in front of the
host that prefixes each datagram with `W` and the client's port, and a side channel that unwraps
them into a `Routed` address and wraps what the core sends back."""

from __future__ import annotations

import asyncio
import struct
import threading
from typing import Any, NamedTuple

from tests.net.hostside import AcceptingHost
from wavry.net.client import ClientConnection
from wavry.net.host import HostServer
from wavry.net.loop import run
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.rift.identity import Identity
from wavry.rift.transport import FrameReady

FRAMES = 12


class Routed(NamedTuple):
    host: str
    port: int
    client_port: int


class Forwarder(asyncio.DatagramProtocol):
    """The 'relay': client → host wrapped as W + port, host → client unwrapped."""

    def __init__(self, host_addr: tuple[str, int]) -> None:
        self.host_addr = host_addr
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        if tuple(addr[:2]) == self.host_addr:
            (port,) = struct.unpack("!H", data[1:3])
            self.transport.sendto(data[3:], ("127.0.0.1", port))
        else:
            self.transport.sendto(b"W" + struct.pack("!H", addr[1]) + data, self.host_addr)


class WrappingSide:
    def __init__(self, server: HostServer) -> None:
        self.server = server
        self.relay: tuple[str, int] = ("", 0)
        self.send_threads: set[int] = set()
        self.relayed_out = 0

    def receive(self, data: bytes, addr: tuple[Any, ...]) -> None:
        (port,) = struct.unpack("!H", data[1:3])
        self.server.receive(data[3:], Routed(str(addr[0]), int(addr[1]), port))

    def owns(self, addr: tuple[Any, ...]) -> bool:
        return isinstance(addr, Routed)

    def send_run(self, run: list[bytes], addr: tuple[Any, ...]) -> None:
        assert isinstance(addr, Routed)
        self.send_threads.add(threading.get_ident())
        for d in run:
            self.relayed_out += 1
            self.server.send_raw(b"W" + struct.pack("!H", addr.client_port) + d, addr[:2])


def _frame(n: int) -> bytes:
    return bytes([n]) * (7_000 + 97 * n)


async def _session() -> dict[str, Any]:
    side_host = AcceptingHost()
    host = side_host.server
    side = WrappingSide(host)
    host.side = side
    host_addr = await side_host.start()
    loop = asyncio.get_running_loop()
    fwd = Forwarder(host_addr)
    fwd_transport, _ = await loop.create_datagram_endpoint(lambda: fwd, local_addr=("127.0.0.1", 0))
    relay_addr = fwd_transport.get_extra_info("sockname")[:2]
    client = ClientConnection(ClientSession(Identity.generate(), ClientConfig()))
    await client.start(*relay_addr)
    alias = await side_host.wait_accepted()
    got: list[FrameReady] = []
    all_in = asyncio.Event()

    def on_batch(batch: list[Any]) -> None:
        got.extend(e for e in batch if isinstance(e, FrameReady))
        if len(got) >= FRAMES:
            all_in.set()

    client.set_batch_handler(on_batch)
    ids: list[int | None] = []
    errors: list[BaseException] = []

    def encoder() -> None:
        try:
            for n in range(FRAMES):
                ids.append(
                    host.send_frame_threadsafe(
                        alias, _frame(n), keyframe=n == 0, timestamp_us=1 + n
                    )
                )
        except BaseException as e:  # reported by the test
            errors.append(e)

    worker = threading.Thread(target=encoder)
    worker.start()
    while worker.is_alive():
        await asyncio.sleep(0.01)
    if not errors:
        await asyncio.wait_for(all_in.wait(), 10)
    await client.close()
    await host.close()
    fwd_transport.close()
    return {
        "got": got,
        "ids": ids,
        "errors": errors,
        "threads": side.send_threads,
        "loop_thread": threading.get_ident(),
        "relayed_out": side.relayed_out,
    }


def test_frames_from_the_encoder_thread_take_the_side_channel_on_the_loop() -> None:
    out = run(_session())
    assert out["errors"] == []
    ids = out["ids"]
    assert None not in ids and ids == sorted(ids)
    got = out["got"]
    assert [f.frame.frame_id for f in got] == ids
    for n, f in enumerate(got):
        assert f.frame.data == _frame(n)
    assert out["threads"] == {out["loop_thread"]}  # never from the encoder's thread
    assert out["relayed_out"] > FRAMES * 5  # the frames' datagrams, wrapped
