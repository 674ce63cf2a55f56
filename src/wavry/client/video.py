"""The video feature: complete frames → decode thread → the newest shown; keyframe requests and
frame-rate requests when decoding cannot keep up.

Protocol policy lives in two pure classes tested on a fake clock: :class:`KeyframeRequests`
(ReferenceInvalidation at once when the decoder needs a keyframe, then at most every 250 ms
while it still waits) and :class:`DecodeLoad` (ask the host for a lower frame rate when decoding
takes most of the frame interval, and for the old rate once it fits again). Everything else
runs on the event loop thread except decoding and picture preparation
(:class:`wavry.client.pipeline.DecodeWorker`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wavry.client.pipeline import DecodeJob, DecodeWorker, ReadyFrame
from wavry.client.stats import ClientStats, frame_timing
from wavry.runtime.features import Feature, PeerInfo
from wavry.runtime.messages import AppEvent, KeyframeNeeded, RateRequest

__all__ = ["DecodeLoad", "KeyframeRequests", "VideoFeature"]

LATENCY_REPORT_EVERY = 30  # shown frames between LatencyStats messages to the host
LOAD_CHECK_S = 0.25


@dataclass(slots=True)
class KeyframeRequests:
    """When the decoder needs a keyframe: a request at once, then every ``interval_s`` until a
    keyframe arrives; frames that are not keyframes are undecodable meanwhile."""

    interval_s: float = 0.25
    waiting: bool = False
    last_good: int = 0
    _next_at: float = 0.0

    def lost(self, now: float) -> KeyframeNeeded | None:
        """The decoder cannot go on without a keyframe; the request to send now, if any."""
        if not self.waiting or self._next_at == float("inf"):
            self._next_at = min(self._next_at, now)
        self.waiting = True
        return self._due(now)

    def _due(self, now: float) -> KeyframeNeeded | None:
        if now < self._next_at:
            return None
        self._next_at = now + self.interval_s
        return KeyframeNeeded(self.last_good)

    def frame(self, keyframe: bool, now: float) -> tuple[bool, KeyframeNeeded | None]:
        """A frame arrived: (decodable, request to send now)."""
        if keyframe:
            self.waiting = False
            return True, None
        if self.waiting:
            return False, self._due(now)
        return True, None

    def decoded(self, frame_id: int) -> None:
        self.last_good = max(self.last_good, frame_id)

    def next_timer(self) -> float | None:
        return self._next_at if self.waiting else None

    def on_timer(self, now: float) -> KeyframeNeeded | None:
        return self._due(now) if self.waiting else None

    def expect_keyframe(self) -> None:
        """A new session: its first frame is a keyframe (nothing to ask for), and its frame
        ids start again."""
        self.waiting = True
        self.last_good = 0
        self._next_at = float("inf")


FPS_STEPS = (60, 45, 30, 20, 15, 10)


@dataclass(slots=True)
class DecodeLoad:
    """Frame-rate requests from decode times (``(at, seconds)`` per decoded frame).

    Decoding busier than ``high`` of the last ``window_s``, or ``queue_limit`` frames waiting
    for the decoder: ask for the highest step of ``FPS_STEPS`` at which the decode time would
    fill at most ``target`` of the interval. Once the next step up would fill less than ``low``
    for ``recover_s``: ask for it (0, no request, when it reaches the stream's own rate).
    """

    stream_fps: int = 60
    window_s: float = 1.0
    high: float = 0.85
    target: float = 0.7
    low: float = 0.5
    recover_s: float = 5.0
    hold_s: float = 1.0
    queue_limit: int = 3
    cap: int = 0  # the rate asked for (0: none)
    _changed_at: float = -1e9
    _fits_since: float | None = None

    def poll(
        self, now: float, queue_depth: int, decodes: Iterable[tuple[float, float]]
    ) -> int | None:
        """The new rate to ask the host for (0 lifts the request), or None for no change."""
        recent = [s for at, s in decodes if at > now - self.window_s]
        if not recent or now - self._changed_at < self.hold_s:
            return None
        per = sum(recent) / len(recent)
        busy = sum(recent) / self.window_s
        current = self.cap or self.stream_fps
        if busy > self.high or queue_depth >= self.queue_limit:
            self._fits_since = None
            fitting = [s for s in FPS_STEPS if s < current and s * per <= self.target]
            step = fitting[0] if fitting else min(FPS_STEPS[-1], current)
            return None if step >= current else self._set(step, now)
        if not self.cap:
            return None
        up = min(next((s for s in reversed(FPS_STEPS) if s > self.cap), 0), self.stream_fps)
        up = up or self.stream_fps
        if up * per >= self.low:
            self._fits_since = None
            return None
        if self._fits_since is None:
            self._fits_since = now
        if now - self._fits_since < self.recover_s:
            return None
        self._fits_since = None
        return self._set(0 if up >= self.stream_fps else up, now)

    def _set(self, cap: int, now: float) -> int:
        self.cap = cap
        self._changed_at = now
        return cap


Send = Callable[[AppEvent], None]


class VideoFeature(Feature):
    """Frames in, pictures out. With a window, ``prepare`` (thread-safe) readies each newest
    frame on the decode thread and ``wake`` tells the window thread one is waiting; it shows it
    and reports back through :meth:`shown`. Headless (``prepare`` None): decode and measure."""

    name = "video"

    def __init__(
        self,
        *,
        decoder: Any,
        stats: ClientStats,
        send: Send,
        call_soon: Callable[[Callable[[], None]], None],
        core_clock: Callable[[], float],
        clock_offset: Callable[[], float | None],
        stream_fps: int,
        prepare: Callable[[Any], Any] | None = None,
        wake: Callable[[], None] | None = None,
        max_bitrate_kbps: int = 0,
        on_shown: Callable[[ReadyFrame, float], None] | None = None,
        on_decoded: Callable[[DecodeJob, Any], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.stats = stats
        self._send = send
        self._core_clock = core_clock
        self._offset = clock_offset
        self._mono = monotonic
        self._wall = wall
        self.keyframes = KeyframeRequests()
        self.load = DecodeLoad(stream_fps=stream_fps or 60)
        self.max_bitrate_kbps = max_bitrate_kbps
        self._on_shown = on_shown
        self._since_report = 0
        self._load_at = 0.0
        self._call_soon = call_soon
        self.headless = prepare is None or wake is None
        if self.headless:
            prepare = None
            on_ready: Callable[[], None] = lambda: call_soon(self.show_newest)  # noqa: E731
        else:
            assert wake is not None
            on_ready = wake
        self.worker = DecodeWorker(
            decoder,
            prepare=prepare,
            on_ready=on_ready,
            on_broken=lambda fid: call_soon(lambda: self._decoder_broken(fid)),
            on_decoded=on_decoded,
            clock=monotonic,
        )

    def waiting_for_window(self) -> None:
        """A window is on its way: decode what arrives meanwhile (the decoder warms up, no
        backlog builds) but show nothing until :meth:`attach`."""
        self.headless = False
        self.worker.set_presentation(None, lambda: None)

    def attach(self, prepare: Callable[[Any], Any], wake: Callable[[], None]) -> None:
        """The window is there: prepare each newest frame for it and wake its thread."""
        self.worker.set_presentation(prepare, wake)
        wake()

    # ---- frames in (event loop) -------------------------------------------------------

    def on_frame(self, frame: Any, now: float) -> None:
        """A complete access unit from the transport (rift AssembledFrame); ``now`` monotonic."""
        self.stats.arrived(now, len(frame.data))
        ok, request = self.keyframes.frame(frame.keyframe, now)
        if request is not None:
            self._send(request)
        if not ok:
            self.stats.drop("waiting for keyframe")
            return
        if not self.worker.submit(DecodeJob(frame, now)):  # counted by the worker
            self._ask_keyframe(now)

    def _decoder_broken(self, frame_id: int) -> None:
        self.stats.drop("undecodable")
        self._ask_keyframe(self._mono())

    def _ask_keyframe(self, now: float) -> None:
        request = self.keyframes.lost(now)
        if request is not None:
            self._send(request)

    # ---- pictures out (event loop) ----------------------------------------------------

    def show_newest(self) -> None:
        """Headless: take the newest decoded frame as shown now."""
        ready = self.worker.take()
        if ready is not None:
            now = self._mono()
            self.shown(ready, now, now, self._wall())

    def shown(self, ready: ReadyFrame, show_start: float, shown: float, shown_wall: float) -> None:
        """A frame reached the screen (the window thread's times): stats, LatencyStats."""
        f = ready.job.frame
        self.keyframes.decoded(f.frame_id)
        # the transport's clock may differ from ours: its arrival time, as an age, on ours
        age = max(0.0, self._core_clock() - f.last_chunk_at)
        wall_now, mono_now = self._wall(), self._mono()
        timing = frame_timing(
            frame_id=f.frame_id,
            timestamp_us=f.timestamp_us,
            capture_us=f.capture_us,
            encode_us=f.encode_us,
            arrived_wall=wall_now - age,
            arrived=min(ready.job.handed_at, mono_now - age),
            decode_start=ready.decode_start,
            decode_end=ready.decode_end,
            prepared=ready.prepared_at if ready.prepared is not None else ready.decode_end,
            show_start=show_start,
            shown=shown,
            shown_wall=shown_wall,
            clock_offset_s=self._offset() or 0.0,
            size_bytes=len(f.data),
        )
        self.stats.record(timing)
        if self._on_shown is not None:
            self._on_shown(ready, shown_wall)
        self._since_report += 1
        if self._since_report >= LATENCY_REPORT_EVERY:
            self._since_report = 0
            self._send(timing.report())

    def sync_counters(self) -> None:
        """Copy the decode thread's drop counters into the stats."""
        w = self.worker
        self.stats.drops.update(
            {
                "superseded by a newer frame": w.superseded + w.not_prepared,
                "decoder queue dropped": w.flushed,
                "skipped until keyframe": w.skipped,
            }
        )

    # ---- lifecycle ----------------------------------------------------------------------

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        if peer.extra.get("reconnected"):
            self.keyframes.expect_keyframe()  # a new session starts with a keyframe
        if self.load.cap or self.max_bitrate_kbps:
            self._send(RateRequest(self.max_bitrate_kbps, self.load.cap))

    def next_timer(self) -> float | None:
        t = self.keyframes.next_timer()
        return min(t, self._load_at) if t is not None else self._load_at

    def on_timer(self, now: float) -> None:
        request = self.keyframes.on_timer(now)
        if request is not None:
            self._send(request)
        if now >= self._load_at:
            self._load_at = now + LOAD_CHECK_S
            decodes = list(self.worker.decode_seconds)
            cap = self.load.poll(now, self.worker.queue_depth, decodes)
            if cap is not None:
                self.stats.congestion.decoder_fps_cap = cap
                self._send(RateRequest(self.max_bitrate_kbps, cap))
            self.sync_counters()

    def close(self) -> None:
        self.worker.close()
