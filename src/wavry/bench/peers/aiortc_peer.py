"""aiortc in `wavry bench peers`: a WebRTC sender capturing display A and a viewer showing the
stream in a window on display B, as two processes that meet over a TCP signalling socket.

aiortc is a library, not a remote desktop, so both ends are small programs here, each tuned for
low latency the way an application built on aiortc would be:

- sender: FFmpeg's x11grab (through PyAV, as aiortc's own MediaPlayer does) in a thread that
  keeps only the newest picture, so the encoder never works through a backlog; H.264 with
  wavry's libx264 settings and a fixed bitrate (:class:`MatchedH264Encoder`), aiortc's RTP
  packetizer, pacing and congestion feedback;
- viewer: stock aiortc receive path (jitter buffer, decoder thread), the newest decoded frame
  handed to a presenter thread that shows it in wavry's own client window (the same present path
  as `wavry connect`, so the comparison is about transport and receive, not drawing).

    python -m wavry.bench.peers.aiortc_peer send --listen 127.0.0.1:PORT --width 1280 ...
    python -m wavry.bench.peers.aiortc_peer view --connect 127.0.0.1:PORT --width 1280 ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from wavry.bench.peers.procs import Proc, free_tcp_port, wait_tcp
from wavry.bench.peers.stage import NotRunnable, Running, Stage

__all__ = ["AiortcSystem"]

_START_TIMEOUT_S = 30.0
VIDEO_CLOCK = 90_000


class AiortcSystem:
    name = "aiortc"

    def __init__(self, bitrate_kbps: int = 8000) -> None:
        self.bitrate_kbps = bitrate_kbps

    def tuning(self, path: str) -> str:
        del path
        return (
            "x11grab keeping only the newest picture; H.264 with wavry's libx264 settings "
            f"(ultrafast, zerolatency, no B-frames) at a fixed {self.bitrate_kbps} kbit/s; stock "
            "aiortc RTP, jitter buffer and decoder; newest decoded frame shown in wavry's client "
            "window by a presenter thread"
        )

    def missing(self) -> str | None:
        try:
            import aiortc  # noqa: F401
        except ImportError:
            return "aiortc is not installed (it is in the `bench` dependency set)"
        return None

    def start(self, stage: Stage) -> Running:
        run = Running()
        port = free_tcp_port()
        addr = stage.path.server_addr
        size = ["--width", str(stage.width), "--height", str(stage.height)]
        me = [sys.executable, "-m", "wavry.bench.peers.aiortc_peer"]
        send = [*me, "send", "--listen", f"{addr}:{port}", *size, "--fps", str(stage.fps)]
        send += ["--bitrate-kbps", str(self.bitrate_kbps)]
        run.servers.append(Proc("aiortc-send", stage.path.server_argv(send), stage.display_a.env()))
        if not wait_tcp(addr, port, _START_TIMEOUT_S, stage.path.viewer_ns):
            run.stop()
            raise NotRunnable(f"aiortc sender did not listen: {run.servers[0].log_tail()}")
        view = [*me, "view", "--connect", f"{addr}:{port}", *size]
        run.viewers.append(Proc("aiortc-view", stage.path.viewer_argv(view), stage.display_b.env()))
        run.facts["port"] = port
        return run


# ---- sender --------------------------------------------------------------------------------


def _x11_track(width: int, height: int, fps: int) -> Any:
    import av
    from aiortc import MediaStreamTrack

    class X11Track(MediaStreamTrack):
        """Display A through x11grab; recv() returns the newest picture not sent yet."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._container = av.open(
                os.environ["DISPLAY"],
                format="x11grab",
                options={
                    "video_size": f"{width}x{height}",
                    "framerate": str(fps),
                    "draw_mouse": "0",
                },
            )
            self._evloop = asyncio.get_running_loop()
            self._fresh = asyncio.Event()
            self._latest: Any = None
            self._start = time.monotonic()
            self._closed = False
            threading.Thread(target=self._grab, daemon=True).start()

        def _grab(self) -> None:
            for frame in self._container.decode(video=0):
                if self._closed:
                    break
                self._latest = frame
                self._evloop.call_soon_threadsafe(self._fresh.set)

        async def recv(self) -> Any:
            await self._fresh.wait()
            self._fresh.clear()
            frame = self._latest
            frame.pts = round((time.monotonic() - self._start) * VIDEO_CLOCK)
            frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            return frame

        def stop(self) -> None:
            self._closed = True
            super().stop()

    return X11Track()


async def _send_line(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj).encode() + b"\n")
    await writer.drain()


async def run_sender(host: str, port: int, width: int, height: int, fps: int, kbps: int) -> None:
    from aiortc import (
        RTCConfiguration,
        RTCPeerConnection,
        RTCRtpSender,
        RTCSessionDescription,
        rtcrtpsender,
    )

    from wavry.bench.latency_aiortc import MatchedH264Encoder, _h264_first

    namespace = vars(rtcrtpsender)
    stock = namespace["get_encoder"]

    def get_encoder(codec: Any) -> Any:
        if codec.mimeType.lower() == "video/h264":
            return MatchedH264Encoder(kbps * 1000, fps)
        return stock(codec)

    namespace["get_encoder"] = get_encoder
    track = _x11_track(width, height, fps)
    peers: list[Any] = []

    async def on_viewer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await reader.readline()  # the viewer's first line; a port probe sends none
        if not hello.strip():
            writer.close()
            return
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video")
        transceiver.setCodecPreferences(_h264_first(list(caps.codecs)))
        await pc.setLocalDescription(await pc.createOffer())
        desc = pc.localDescription
        await _send_line(writer, {"sdp": desc.sdp, "type": desc.type})
        answer = json.loads(await reader.readline())
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))

    server = await asyncio.start_server(on_viewer, host, port)
    try:
        await _until_terminated()
    finally:
        server.close()
        for pc in peers:
            await pc.close()
        track.stop()


async def _until_terminated() -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()


# ---- viewer --------------------------------------------------------------------------------


class _Presenter(threading.Thread):
    """Shows the newest frame handed over in wavry's client window; older ones are dropped."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(daemon=True)
        self.size = (width, height)
        self._cond = threading.Condition()
        self._frame: Any = None
        self.stopped = False
        self.presented = self.dropped = 0

    def hand_over(self, frame: Any) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def run(self) -> None:
        from wavry.client.window import VideoWindow

        window = VideoWindow("aiortc", *self.size)
        try:
            while not self.stopped:
                with self._cond:
                    self._cond.wait_for(lambda: self._frame is not None or self.stopped, 0.05)
                    frame, self._frame = self._frame, None
                window.poll()
                if frame is None:
                    continue
                window.show_frame(frame)  # the client window's own present path
                self.presented += 1
        finally:
            window.close()


async def run_viewer(host: str, port: int, width: int, height: int) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    presenter = _Presenter(width, height)
    presenter.start()
    reader, writer = await asyncio.open_connection(host, port)
    await _send_line(writer, {"hello": "aiortc viewer"})
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    offer = json.loads(await reader.readline())
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await _send_line(writer, {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})
    track = await tracks.get()

    async def consume() -> None:
        while True:
            presenter.hand_over(await track.recv())

    task = asyncio.create_task(consume())
    try:
        await _until_terminated()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        presenter.stopped = True
        await pc.close()
        writer.close()
        print(json.dumps({"presented": presenter.presented, "dropped": presenter.dropped}))


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("role", choices=["send", "view"])
    p.add_argument("--listen")
    p.add_argument("--connect")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=60)
    p.add_argument("--bitrate-kbps", type=int, default=8000)
    a = p.parse_args(argv)
    if a.role == "send":
        host, port = _hostport(a.listen)
        asyncio.run(run_sender(host, port, a.width, a.height, a.fps, a.bitrate_kbps))
    else:
        host, port = _hostport(a.connect)
        asyncio.run(run_viewer(host, port, a.width, a.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
