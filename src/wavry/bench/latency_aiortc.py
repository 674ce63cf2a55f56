"""The aiortc (Python WebRTC) side of `wavry bench latency`.

Two RTCPeerConnections in one process talk over the host's own interfaces (ICE host candidates,
no STUN). The sender's track produces the same synthetic frames as `wavry host --source
synthetic` (same pattern, noise and marker), paced to the frame rate; H.264 is forced through
codec preferences. The receiver reads the marker on every frame its track returns.

Encoder settings: aiortc's stock H264Encoder opens libx264 with the default preset (medium),
``tune=zerolatency``, Baseline profile, level 3.1 and a bitrate clamped to 0.5–3 Mbit/s that
follows REMB. With ``matched=True`` (the default here) the sender uses a subclass that keeps
aiortc's packetizer and RTP path but opens libx264 the way wavry does (ultrafast, zerolatency,
no B-frames, sliced threads ×2, no lookahead, CBR-like VBV of two frames) at a fixed bitrate, so
the comparison is about transport and receive path, not encoder presets. The receive side is
stock aiortc: its jitter buffer hands a video frame to the decoder only when a packet of the
*next* frame arrives, and decoding runs in a worker thread that posts back to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpSender,
)
from aiortc import rtcrtpsender as _rtcrtpsender
from aiortc.codecs.h264 import H264Encoder

from wavry.media.synthetic import SyntheticCapture

__all__ = ["MatchedH264Encoder", "SyntheticTrack", "run_aiortc"]

VIDEO_CLOCK = 90_000


class SyntheticTrack(MediaStreamTrack):
    """A video track producing SyntheticCapture frames at ``fps`` (asyncio-paced)."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: float, noise: int) -> None:
        super().__init__()
        self._cap = SyntheticCapture(width, height, fps, paced=False, noise=noise)
        self._fps = float(fps)
        self._index = 0
        self._next_due: float | None = None
        self.produced = 0

    async def recv(self) -> av.VideoFrame:
        now = time.monotonic()
        if self._next_due is None:
            self._next_due = now
        delay = self._next_due - now
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_due = max(self._next_due + 1.0 / self._fps, time.monotonic() - 1.0)
        ts = time.time_ns() // 1000
        frame = self._cap.make_frame(self._index, ts)
        frame.pts = round(self._index * VIDEO_CLOCK / self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._index += 1
        self.produced += 1
        return frame


class MatchedH264Encoder(H264Encoder):
    """aiortc's H.264 encoder (same packetizer) with wavry's libx264 settings, fixed bitrate."""

    def __init__(self, bitrate_bps: int, fps: float, threads: int = 2) -> None:
        super().__init__()
        self._fixed_bps = int(bitrate_bps)
        self._fps = float(fps)
        self._threads = threads
        self.bytes_out = 0

    @property
    def target_bitrate(self) -> int:
        return self._fixed_bps

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:  # REMB: ignored (fixed, like the bench)
        del bitrate

    def _encode_frame(self, frame: av.VideoFrame, force_keyframe: bool) -> Iterator[bytes]:
        frame.pict_type = (
            av.video.frame.PictureType.I if force_keyframe else av.video.frame.PictureType.NONE
        )
        if self.codec is None:
            bps = self._fixed_bps
            ctx: Any = av.CodecContext.create("libx264", "w")
            ctx.width, ctx.height = frame.width, frame.height
            ctx.bit_rate = bps
            ctx.pix_fmt = "yuv420p"
            ctx.framerate = fractions.Fraction(self._fps).limit_denominator(1001)
            ctx.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            ctx.thread_type = "SLICE"
            ctx.thread_count = self._threads
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "forced-idr": "1",
                "maxrate": str(bps),
                "bufsize": str(int(bps * 2 / self._fps)),
                "x264-params": "bframes=0:sliced-threads=1:rc-lookahead=0:sync-lookahead=0"
                ":scenecut=0:repeat-headers=1:annexb=1:aud=0",
            }
            ctx.profile = "Baseline"
            self.codec = ctx
        data = b"".join(bytes(p) for p in self.codec.encode(frame))
        self.bytes_out += len(data)
        if data:
            yield from self._split_bitstream(data)


def _h264_first(codecs: list[RTCRtpCodecCapability]) -> list[RTCRtpCodecCapability]:
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
    # packetization-mode=1 (FU-A) first: it carries frames larger than one datagram.
    h264.sort(key=lambda c: 0 if "packetization-mode=1" in str(c.parameters) else 1)
    rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx"]
    return h264 + rtx


async def run_aiortc(
    width: int,
    height: int,
    fps: float,
    bitrate_kbps: int,
    *,
    noise: int,
    warmup_s: float,
    seconds: float,
    on_frame: Callable[[Any, int], None],
    matched: bool = True,
) -> dict[str, Any]:
    """Stream for ``warmup_s + seconds``; call ``on_frame(frame, now_us)`` for each frame the
    receiving track returns after the warm-up. Returns negotiation facts and CPU use."""
    # RTCRtpSender picks its encoder through the module-level get_encoder: swap it for the run.
    namespace = vars(_rtcrtpsender)
    original_get_encoder = namespace["get_encoder"]
    encoders: list[str] = []
    matched_encoders: list[MatchedH264Encoder] = []

    def get_encoder(codec: RTCRtpCodecParameters) -> Any:
        if matched and codec.mimeType.lower() == "video/h264":
            enc: Any = MatchedH264Encoder(bitrate_kbps * 1000, fps)
            matched_encoders.append(enc)
        else:
            enc = original_get_encoder(codec)
        encoders.append(f"{type(enc).__name__} ({codec.mimeType})")
        return enc

    namespace["get_encoder"] = get_encoder
    config = RTCConfiguration(iceServers=[])
    pc_send, pc_recv = RTCPeerConnection(config), RTCPeerConnection(config)
    track = SyntheticTrack(width, height, fps, noise)
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    measuring = False
    frames_seen = 0

    @pc_recv.on("track")
    def _on_track(t: MediaStreamTrack) -> None:
        if t.kind == "video" and not received.done():
            received.set_result(t)

    async def consume(t: MediaStreamTrack) -> None:
        nonlocal frames_seen
        while True:
            frame = await t.recv()
            now_us = time.time_ns() // 1000
            frames_seen += 1
            if measuring:
                on_frame(frame, now_us)

    try:
        transceiver = pc_send.addTransceiver(track, direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video")
        transceiver.setCodecPreferences(_h264_first(list(caps.codecs)))
        offer = await pc_send.createOffer()
        await pc_send.setLocalDescription(offer)
        await pc_recv.setRemoteDescription(pc_send.localDescription)
        answer = await pc_recv.createAnswer()
        await pc_recv.setLocalDescription(answer)
        await pc_send.setRemoteDescription(pc_recv.localDescription)
        t_setup = time.monotonic()
        remote_track = await asyncio.wait_for(received, 20)
        task = asyncio.create_task(consume(remote_track))
        await asyncio.sleep(warmup_s)
        if frames_seen == 0:
            # ICE/DTLS take a moment: wait (bounded) for the first frame before measuring.
            deadline = time.monotonic() + 20
            while frames_seen == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if frames_seen == 0:
                raise RuntimeError("aiortc delivered no frame within 20 s")
            await asyncio.sleep(warmup_s)
        setup_s = time.monotonic() - t_setup
        measuring = True
        bytes0 = sum(e.bytes_out for e in matched_encoders)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        measuring = False
        wall = time.monotonic() - wall0
        cpu = (time.process_time() - cpu0) / wall
        sent_bits = (sum(e.bytes_out for e in matched_encoders) - bytes0) * 8
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return {
            "encoder": ", ".join(dict.fromkeys(encoders)),
            "matched_encoder_settings": matched,
            "cpu_cores_process": cpu,
            "setup_s": setup_s,
            "frames_produced": track.produced,
            "bitrate_kbps": sent_bits / 1000 / wall if matched_encoders else None,
        }
    finally:
        namespace["get_encoder"] = original_get_encoder
        await pc_send.close()
        await pc_recv.close()
