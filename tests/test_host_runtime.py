"""The host runtime from Python, with real sockets on loopback and a real RIFT client: typed
input reaching the injector, the owner's controls (clients, disconnect), what it reports, a
virtual display at the client's size, and clear errors (port in use)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from wavry.host import HostBackends, HostError, HostOptions, HostRuntime
from wavry.host.notices import (
    ClientJoined,
    ClientLeft,
    HostNotice,
    HostStarted,
    HostStopped,
    InputReleased,
)
from wavry.media.pacing import CAPTURE_HEADROOM
from wavry.net.loop import run
from wavry.platform.input import InputInjector
from wavry.rift import events as ev
from wavry.rift.config import ClientConfig
from wavry.rift.transport import FrameReady
from wavry.runtime.injection import InjectorSink
from wavry.runtime.messages import KeyInput, encode
from wavry.runtime.session import establish
from wavry.runtime.streamer import SOURCE_BURST_PICTURES


class RecordingInjector(InputInjector):
    def __init__(self) -> None:
        super().__init__()
        self.keys: list[tuple[int, bool]] = []

    def _key(self, evdev_code: int, pressed: bool) -> None:
        self.keys.append((evdev_code, pressed))

    def _button(self, button: int, pressed: bool) -> None:
        pass

    def _move_abs(self, x01: float, y01: float) -> None:
        pass

    def _motion(self, dx: float, dy: float) -> None:
        pass

    def _scroll(self, dx: float, dy: float) -> None:
        pass


def _options(tmp_path: Path, **kw: object) -> HostOptions:
    base: dict[str, object] = {
        "listen": ("127.0.0.1", 0),
        "trust_any": True,
        "config_dir": tmp_path / "host",
        "source": "synthetic",
        "width": 320,
        "height": 240,
        "fps": 30,
        "audio": "off",
        "file_out_dir": tmp_path / "files",
    }
    base.update(kw)
    return HostOptions(**base)  # type: ignore[arg-type]


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _run(coro: Callable[[], Awaitable[None]]) -> None:
    run(coro())  # the product's loop (uvloop), as `wavry host` runs


def test_runtime_api_typed_input_clients_and_disconnect(tmp_path: Path) -> None:
    notices: list[HostNotice] = []
    inj = RecordingInjector()

    async def main() -> None:
        rt = HostRuntime(
            _options(tmp_path),
            observer=notices.append,
            backends=HostBackends(open_injector=lambda _cap: InjectorSink(inj)),
        )
        host, port = await rt.start()
        est = await establish(host, port, ClientConfig(), config_dir=tmp_path / "client")
        try:
            await _until(lambda: len(rt.clients()) == 1)
            (client,) = rt.clients()
            assert client.wavry_id == est.session.identity.wavry_id
            assert (client.width, client.height, client.fps) == (320, 240, 30)
            est.conn.send(encode(KeyInput(30, True)))
            await _until(lambda: inj.keys == [(30, True)])
            await _until(lambda: rt.clients()[0].stats.frames_sent > 3)
            rt.disconnect(client.peer)  # the owner's Disconnect
            await _until(lambda: rt.clients() == [])
            # the session's end released what the client held
            assert inj.keys == [(30, True), (30, False)]
            closed = None
            with contextlib.suppress(TimeoutError):
                while not isinstance(closed, ev.SessionClosed):
                    closed = await est.conn.next_event(2.0)
            assert isinstance(closed, ev.SessionClosed) and "owner" in closed.message
        finally:
            await est.conn.close()
            await rt.close()

    _run(main)
    kinds = [type(n) for n in notices]
    assert kinds[0] is HostStarted and kinds[-1] is HostStopped
    joined = next(n for n in notices if isinstance(n, ClientJoined))
    assert joined.width == 320 and joined.address.startswith("127.0.0.1:")
    left = next(n for n in notices if isinstance(n, ClientLeft))
    assert left.peer == joined.peer and left.reason == "user"
    released = next(n for n in notices if isinstance(n, InputReleased))
    assert released.keys == (30,) and "ended" in released.why


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]

        async def main() -> None:
            rt = HostRuntime(_options(tmp_path, listen=("127.0.0.1", port)), observer=print)
            try:
                with pytest.raises(HostError) as info:
                    await rt.start()
            finally:
                await rt.close()
            assert str(info.value) == f"cannot listen on 127.0.0.1:{port}: address already in use"

        _run(main)


def test_banner_lists_real_addresses_on_a_wildcard_listen(tmp_path: Path) -> None:
    notices: list[HostNotice] = []

    async def main() -> None:
        rt = HostRuntime(_options(tmp_path, listen=("0.0.0.0", 0)), observer=notices.append)
        _, port = await rt.start()
        await rt.close()
        started = notices[0]
        assert isinstance(started, HostStarted)
        assert f"127.0.0.1:{port}" in started.connect_addresses
        assert all(not a.startswith("0.0.0.0") for a in started.connect_addresses)
        assert started.wavry_id == rt.identity.wavry_id

    _run(main)


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is needed")
def test_virtual_display_takes_the_clients_size(tmp_path: Path) -> None:
    async def main() -> None:
        rt = HostRuntime(_options(tmp_path, source="virtual", virtual=None), observer=print)
        host, port = await rt.start()
        config = ClientConfig(max_width=800, max_height=600, max_fps=24)
        est = await establish(host, port, config, config_dir=tmp_path / "client")
        try:
            res = est.ack.stream_resolution
            assert (res.width, res.height, est.ack.fps) == (800, 600, 24)
            await _until(lambda: rt.video.streamer is not None)
            capture = rt.video.capture
            assert capture is not None and capture.size == (800, 600)
            assert capture.fps == 24  # the client's max_fps caps the capture
        finally:
            await est.conn.close()
            await rt.close()

    _run(main)


def test_the_clients_max_fps_caps_the_stream(tmp_path: Path) -> None:
    """A 30 fps source and a client that wants at most 10: about 10 frames a second leave."""

    async def main() -> None:
        rt = HostRuntime(_options(tmp_path), observer=lambda _n: None)
        host, port = await rt.start()
        config = ClientConfig(max_fps=10)
        est = await establish(host, port, config, config_dir=tmp_path / "client")
        try:
            assert est.ack.fps == 10
            await _until(lambda: rt.video.frames_sent > 0)
            start = rt.video.frames_sent
            await asyncio.sleep(2.0)
            sent = rt.video.frames_sent - start
            # 20 at 10 fps (25 with the capture's headroom, plus its burst), not the source's
            # 60 in 2 s
            assert 10 <= sent <= 10 * CAPTURE_HEADROOM * 2 + SOURCE_BURST_PICTURES, sent
        finally:
            await est.conn.close()
            await rt.close()

    _run(main)


def test_frames_leave_while_the_hosts_loop_is_busy(tmp_path: Path) -> None:
    """The encode thread hands each frame to the transport itself (issue 19: no loop hop): with
    the host's event loop blocked for half a second, the client still gets frames at the
    stream's rate."""
    host_loop = asyncio.new_event_loop()
    started: list[tuple[str, int]] = []
    stop: list[asyncio.Event] = []
    ready = threading.Event()

    async def serve() -> None:
        rt = HostRuntime(_options(tmp_path, fps=60), observer=lambda _n: None)
        stop.append(asyncio.Event())
        try:
            started.append(await rt.start())
            ready.set()
            await stop[0].wait()
        finally:
            await rt.close()

    thread = threading.Thread(target=host_loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)

    async def main() -> None:
        est = await establish(*started[0], ClientConfig(), config_dir=tmp_path / "client")
        arrived: list[float] = []
        est.conn.set_batch_handler(
            lambda batch: arrived.extend(
                time.monotonic() for e in batch if isinstance(e, FrameReady)
            )
        )
        try:
            await _until(lambda: len(arrived) > 10)
            blocked = threading.Event()

            def block() -> None:
                blocked.set()
                time.sleep(0.5)

            host_loop.call_soon_threadsafe(block)
            assert blocked.wait(5)
            t0 = time.monotonic()
            await asyncio.sleep(0.5)
            during = [t for t in arrived if t0 + 0.05 < t < t0 + 0.45]
            # 60 fps: ~24 frames in those 0.4 s; a loop hop would let none through
            assert len(during) >= 10, len(during)
        finally:
            await est.conn.close()

    try:
        _run(main)
    finally:
        host_loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        host_loop.close()
