"""Video: capture → encode → send to every accepted session.

One :class:`~wavry.runtime.streamer.Streamer` (capture and encode threads) runs while at least
one session is accepted; it starts with the first and stops, in a worker thread, when the last
one leaves. It follows the core's signals: a keyframe when a client lost a reference, the
congestion controller's bitrate, frames to skip, the monitor a client selects. Encoded frames go
to every session straight from the encode thread (no wait for the event loop: the first datagrams
leave while the loop may be busy), then to the frame taps (recording) on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from wavry.host.link import BacklogGate, SessionLink
from wavry.host.routing import (
    FramesToSkip,
    HostFeature,
    PeerInfo,
    RateTarget,
    RoutedEvent,
    StreamParams,
    stream_of,
)
from wavry.media.encode import EncodedFrame, EncoderError
from wavry.media.types import Capture, CapturedFrame, CaptureError, CaptureLost
from wavry.runtime.messages import KeyframeNeeded, MonitorSelected
from wavry.runtime.streamer import Streamer

__all__ = ["FrameTap", "StreamerFactory", "VideoFeature"]

FrameTap = Callable[[CapturedFrame, EncodedFrame, Streamer], None]
StreamerFactory = Callable[..., Streamer]


class VideoFeature(HostFeature):
    name = "video"
    handles = (KeyframeNeeded, RateTarget, FramesToSkip, MonitorSelected)

    def __init__(
        self,
        capture: Capture | None,
        link: SessionLink,
        say: Callable[[str], None],
        *,
        on_source_lost: Callable[[str], None],
        on_capture_ready: Callable[[Capture], None] | None = None,
        follow_client_size: bool = False,
        make_streamer: StreamerFactory = Streamer,
    ) -> None:
        self.capture = capture
        self.link = link
        self.say = say
        self.on_source_lost = on_source_lost
        #: called once the capture is started for a stream (input and clipboard need it)
        self.on_capture_ready = on_capture_ready
        self.follow_client_size = follow_client_size
        self.make_streamer = make_streamer
        self.viewers: dict[int, StreamParams | None] = {}
        #: the sessions the encode thread sends to: a snapshot of ``viewers``, replaced (never
        #: changed in place) on the loop
        self._sending_to: tuple[int, ...] = ()
        self.streamer: Streamer | None = None
        self.taps: list[FrameTap] = []
        self.on_idle: list[Callable[[], None]] = []  # the last viewer left (recording closes)
        self.gate: BacklogGate | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._announced_encoder = False
        self.frames_sent = 0
        self.frames_to: dict[int, int] = {}  # frames sent to each session

    # ---- lifecycle --------------------------------------------------------------------

    def _viewers_changed(self) -> None:
        self._sending_to = tuple(self.viewers)

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        self.viewers[peer.peer] = stream_of(peer)
        self._viewers_changed()
        stopping = self._stopping
        if stopping is not None and not stopping.done():
            # the previous stream still releases the capture: start once it has
            stopping.add_done_callback(lambda _f: self._start())
            return
        self._start()

    def _start(self) -> None:
        if not self.viewers or self.capture is None:
            return
        if self.streamer is not None:
            self.streamer.request_keyframe()  # the new viewer needs one
            return
        params = next((p for p in self.viewers.values() if p is not None), None)
        if params is None:
            return
        if self.follow_client_size:
            # a virtual display (started afresh for each stream) at the first viewer's size
            resize = getattr(self.capture, "resize", None)
            if resize is not None:
                resize(params.width, params.height)
        loop = self._loop = asyncio.get_running_loop()
        self.gate = BacklogGate(self.link, lambda: self._sending_to, self._fps)
        try:
            streamer = self.make_streamer(
                self.capture,
                params.codec,
                params.width,
                params.height,
                params.fps,
                params.bitrate_kbps,
                self._send_frame,
                loop,
                skip_gate=self.gate.should_skip,
                on_lost=self.on_source_lost,
                deliver_on_thread=True,
            )
        except EncoderError as exc:
            self.say(f"  video cannot be encoded: {exc}")
            return
        try:
            streamer.start()
        except CaptureLost as exc:
            streamer.encoder.close()
            self.on_source_lost(str(exc))
            return
        except CaptureError as exc:
            streamer.encoder.close()
            self.say(f"  the picture cannot be captured: {exc}")
            return
        self.streamer = streamer
        name = self.streamer.encoder_name
        if name is not None and not self._announced_encoder:
            self._announced_encoder = True
            self.say(f"  video encoder: {name} (see `wavry doctor`)")
        if self.on_capture_ready is not None:
            self.on_capture_ready(self.capture)

    def _fps(self) -> float:
        return float(self.streamer.encoder.fps) if self.streamer is not None else 60.0

    def on_gone(self, peer: int, reason: str, now: float) -> None:
        self.viewers.pop(peer, None)
        self._viewers_changed()
        self.frames_to.pop(peer, None)
        if self.viewers or self.streamer is None:
            return
        streamer, self.streamer = self.streamer, None
        self._stopping = asyncio.get_running_loop().run_in_executor(None, streamer.stop)
        for idle in self.on_idle:
            idle()

    async def stop(self) -> None:
        """Stop streaming (the runtime is closing)."""
        self.viewers.clear()
        self._viewers_changed()
        if self._stopping is not None:
            await self._stopping
        streamer, self.streamer = self.streamer, None
        if streamer is not None:
            await asyncio.get_running_loop().run_in_executor(None, streamer.stop)
        for idle in self.on_idle:
            idle()

    # ---- events -----------------------------------------------------------------------

    def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
        streamer = self.streamer
        if streamer is None:
            return isinstance(event, MonitorSelected)
        if isinstance(event, KeyframeNeeded):
            streamer.request_keyframe()
        elif isinstance(event, RateTarget):
            streamer.set_bitrate(event.bitrate_kbps)
            if event.fps > 0:
                streamer.set_fps(event.fps)
        elif isinstance(event, FramesToSkip):
            streamer.skip_frames(event.count)
        elif isinstance(event, MonitorSelected):
            self.say(f"session {peer:08x} selects monitor {event.monitor_id}")
            streamer.select_monitor(event.monitor_id)
        return True

    # ---- frames -----------------------------------------------------------------------

    def _send_frame(self, frame: CapturedFrame, encoded: EncodedFrame) -> None:
        """(encode thread) The frame goes to every UDP viewer now; the loop does the rest (and
        sends to viewers whose datagrams leave from there: a browser, a relayed route)."""
        streamer = self.streamer
        loop = self._loop
        if streamer is None or loop is None:
            return
        peers = self._sending_to
        direct = tuple(p for p in peers if self.link.sends_from_thread(p))
        sent = self.link.send_frame_from_thread(direct, encoded.data, **_fields(frame, encoded))
        if self.gate is not None and sent:
            self.gate.update()
        later = tuple(p for p in peers if p not in direct)
        with contextlib.suppress(RuntimeError):  # the loop is closed: the host is stopping
            loop.call_soon_threadsafe(self._frame_sent, frame, encoded, peers, sent, later)

    def _frame_sent(
        self,
        frame: CapturedFrame,
        encoded: EncodedFrame,
        peers: tuple[int, ...],
        sent: list[int],
        later: tuple[int, ...],
    ) -> None:
        """(loop) After the encode thread sent a frame: the viewers whose datagrams leave from
        the loop get it now; then the taps, the counts, the sessions that are gone."""
        streamer = self.streamer
        if streamer is None:
            return
        for peer in later:
            if peer in self.viewers and self.link.send_frame(
                peer, encoded.data, **_fields(frame, encoded)
            ):
                sent.append(peer)
        if later:
            self.link.flush()
            if self.gate is not None and self.viewers:
                self.gate.update()
        for tap in self.taps:
            tap(frame, encoded, streamer)
        for peer in peers:
            if peer in sent:
                self.frames_to[peer] = self.frames_to.get(peer, 0) + 1
            elif peer in self.viewers:
                self.viewers.pop(peer, None)
                self._viewers_changed()
        self.frames_sent += 1


def _fields(frame: CapturedFrame, encoded: EncodedFrame) -> dict[str, Any]:
    """A frame's fields for the transport. encode_us on the wire covers everything from the end
    of capture until the frame enters the transport (waiting for the encoder, encoding, a
    hand-off): the client's jitter buffer then sees network jitter only, not this host's
    scheduling."""
    ready_us = time.time_ns() // 1000 - frame.capture_ts - frame.capture_us
    return {
        "keyframe": encoded.keyframe,
        "timestamp_us": frame.capture_ts,
        "capture_us": frame.capture_us,
        "encode_us": max(encoded.encode_us, ready_us),
    }
