"""Per-frame latency accounting on the client: per-stage times, end-to-end percentiles over the
last second (live), the start-up and the whole session (summary), loss over the last second,
the congestion state the host's rate decisions show, and the ``--stats-json`` document.

End-to-end latency of a shown frame = the time it was shown (client wall clock, corrected by
the Ping/Pong clock offset) − its capture timestamp (host wall clock). Stages, in order:
capture and encode (durations the host reports), network (the frame left the encoder → its last
chunk arrived), queue (last chunk → the decoder starts on it: jitter buffer, hand-off, frames
ahead of it), decode, convert (colour conversion and scaling for the window), wait (converted →
the window thread shows it) and show (the present call itself). ``present`` is convert + wait +
show. Every time here is in seconds on the client's monotonic clock unless named ``_wall``.

Percentiles are :func:`wavry.percentile.percentile` (the project's one rank rule).
"""

from __future__ import annotations

import json
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavry.percentile import percentile, percentiles
from wavry.runtime.messages import LatencyReport

__all__ = [
    "STAGES",
    "ClientStats",
    "CongestionView",
    "FrameTiming",
    "LossMeter",
    "frame_timing",
    "sample_session",
    "write_summary",
]

STAGES = ("capture", "encode", "network", "queue", "decode", "convert", "wait", "show")
STARTUP_S = 1.0  # the first second after the first frame is start-up (reported on its own)


@dataclass(frozen=True, slots=True)
class FrameTiming:
    frame_id: int
    capture_ms: float
    encode_ms: float
    network_ms: float
    queue_ms: float
    decode_ms: float
    convert_ms: float
    wait_ms: float
    show_ms: float
    total_ms: float
    size_bytes: int
    shown_at: float  # monotonic

    @property
    def present_ms(self) -> float:
        return self.convert_ms + self.wait_ms + self.show_ms

    def stage(self, name: str) -> float:
        return float(getattr(self, f"{name}_ms"))

    def report(self) -> LatencyReport:
        def us(ms: float) -> int:
            return max(0, min(0xFFFFFFFF, round(ms * 1000)))

        return LatencyReport(
            frame_id=self.frame_id,
            capture_us=us(self.capture_ms),
            encode_us=us(self.encode_ms),
            network_us=us(self.network_ms),
            decode_us=us(self.queue_ms + self.decode_ms),
            render_us=us(self.present_ms),
            total_us=us(self.total_ms),
        )


def frame_timing(
    *,
    frame_id: int,
    timestamp_us: int,
    capture_us: int,
    encode_us: int,
    arrived_wall: float,
    arrived: float,
    decode_start: float,
    decode_end: float,
    prepared: float,
    show_start: float,
    shown: float,
    shown_wall: float,
    clock_offset_s: float,
    size_bytes: int,
) -> FrameTiming:
    """The timing of one shown frame. ``arrived_wall``/``shown_wall`` are client wall-clock
    seconds (compared with the host's capture timestamp through ``clock_offset_s``, host minus
    client); the rest are monotonic. ``prepared`` = ``decode_end`` when nothing was converted."""
    captured = timestamp_us / 1e6
    sent = captured + (capture_us + encode_us) / 1e6
    return FrameTiming(
        frame_id=frame_id,
        capture_ms=capture_us / 1000,
        encode_ms=encode_us / 1000,
        network_ms=max(0.0, (arrived_wall + clock_offset_s - sent) * 1000),
        queue_ms=max(0.0, (decode_start - arrived) * 1000),
        decode_ms=(decode_end - decode_start) * 1000,
        convert_ms=(prepared - decode_end) * 1000,
        wait_ms=max(0.0, (show_start - prepared) * 1000),
        show_ms=(shown - show_start) * 1000,
        total_ms=(shown_wall + clock_offset_s - captured) * 1000,
        size_bytes=size_bytes,
        shown_at=shown,
    )


class LossMeter:
    """Packet loss over the last ``window_s`` from the receive counters (highest packet id seen,
    datagrams received), sampled by the caller; RFC 3550 interval loss, floored at 0."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int, int]] = deque()
        self.total_pct = 0.0

    def sample(self, now: float, highest_id: int, received: int) -> None:
        self._samples.append((now, highest_id, received))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()
        if highest_id:
            self.total_pct = max(0.0, (highest_id - received) / highest_id * 100)

    def recent_pct(self) -> float | None:
        """Loss between the oldest sample in the window and the newest (None: no span yet)."""
        if len(self._samples) < 2:
            return None
        (_, h0, r0), (_, h1, r1) = self._samples[0], self._samples[-1]
        expected = h1 - h0
        if expected <= 0:
            return 0.0
        return max(0.0, (expected - (r1 - r0)) / expected * 100)


class CongestionView:
    """What the host's rate control is doing, as seen from its CongestionControl decisions: the
    target bitrate was just cut (``congested``), raised (``probing``), held since ``hold_s``
    (``stable``); plus a frame rate below the stream's (the host's, or ours when decoding cannot
    keep up)."""

    def __init__(self, hold_s: float = 2.0) -> None:
        self.hold_s = hold_s
        self.target_kbps: int | None = None
        self.target_fps = 0
        self._change: tuple[float, str] | None = None
        self.decoder_fps_cap = 0  # our own request to the host (0: none)

    def on_target(self, kbps: int, fps: int, now: float) -> None:
        old = self.target_kbps
        if old is not None and kbps < 0.97 * old:
            self._change = (now, "congested")
        elif old is not None and kbps > 1.03 * old:
            self._change = (now, "probing")
        self.target_kbps = kbps
        self.target_fps = fps

    def state(self, now: float, stream_fps: int = 0) -> str:
        if self.target_kbps is None:
            return "-"
        change = self._change
        text = change[1] if change is not None and now - change[0] < self.hold_s else "stable"
        if self.target_fps and stream_fps and self.target_fps < stream_fps:
            text += f", host at {self.target_fps} fps"
        if self.decoder_fps_cap:
            text += f", decoder asks {self.decoder_fps_cap} fps"
        return text


def _r(v: float | None) -> float | None:
    return round(v, 3) if v is not None else None


class ClientStats:
    """Shown frames (recent ones for the live figures, all totals for the session), arrivals
    for the bitrate, drops by reason, and the session's start-up."""

    def __init__(self, window: int = 600) -> None:
        self.frames: deque[FrameTiming] = deque(maxlen=window)
        self.all_totals: list[float] = []
        self.steady_totals: list[float] = []  # after the start-up second
        self.startup_totals: list[float] = []
        self.presented = 0
        self.received = 0  # complete frames from the transport
        self.drops: dict[str, int] = {}
        self.bytes_total = 0
        self._arrivals: deque[tuple[float, int]] = deque()
        self.connect_started: float | None = None  # monotonic
        self.accepted_at: float | None = None
        self.handshake_ms: float | None = None
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.rtt_ms: float | None = None
        self.rtt_at: float | None = None
        self.loss = LossMeter()
        self.fec_recovered = 0
        self.congestion = CongestionView()
        self._stage_sums = dict.fromkeys(STAGES, 0.0)

    # ---- input -----------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    @property
    def loss_pct(self) -> float:
        return self.loss.total_pct

    @property
    def bitrate_target_kbps(self) -> int | None:
        return self.congestion.target_kbps

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n

    def arrived(self, now: float, size_bytes: int) -> None:
        """A complete frame arrived (whether it will be shown or not): the bitrate counts it."""
        self.received += 1
        self._arrivals.append((now, size_bytes))
        while self._arrivals and self._arrivals[0][0] < now - 5.0:
            self._arrivals.popleft()
        self.bytes_total += size_bytes
        self.first_arrival = now if self.first_arrival is None else self.first_arrival
        self.last_arrival = now

    def rtt(self, rtt_ms: float, now: float) -> None:
        self.rtt_ms, self.rtt_at = rtt_ms, now

    def record(self, t: FrameTiming) -> None:
        self.frames.append(t)
        self.all_totals.append(t.total_ms)
        if len(self.all_totals) > 200_000:
            del self.all_totals[:100_000]
        self.presented += 1
        if self.first_at is None:
            self.first_at = t.shown_at
        self.last_at = t.shown_at
        if t.shown_at - self.first_at < STARTUP_S:
            self.startup_totals.append(t.total_ms)
        else:
            self.steady_totals.append(t.total_ms)
            if len(self.steady_totals) > 200_000:
                del self.steady_totals[:100_000]
        for stage in STAGES:
            self._stage_sums[stage] += t.stage(stage)

    # ---- recent figures (live line, overlay) -----------------------------------------

    def recent(self, now: float, span: float = 1.0) -> list[FrameTiming]:
        return [f for f in self.frames if f.shown_at > now - span]

    def fps(self, now: float, span: float = 1.0) -> float:
        return len(self.recent(now, span)) / span

    def bitrate_kbps(self, now: float | None = None, span: float = 1.0) -> float:
        """Received video bitrate over the last ``span`` (``now`` None: the whole session)."""
        if now is None:
            a, b = self.first_arrival, self.last_arrival
            if a is None or b is None or b <= a:
                return 0.0
            return self.bytes_total * 8 / (b - a) / 1000
        recent = sum(size for at, size in self._arrivals if at > now - span)
        return recent * 8 / span / 1000

    def rtt_age(self, now: float) -> float | None:
        return None if self.rtt_at is None else now - self.rtt_at

    def overlay_lines(self, now: float, stream_fps: int = 0) -> list[str]:
        recent = self.recent(now, 1.0)
        totals = [f.total_ms for f in recent]

        def avg(stage: str) -> float:
            return sum(f.stage(stage) for f in recent) / len(recent) if recent else 0.0

        p50, p95 = percentile(totals, 0.5), percentile(totals, 0.95)
        age = self.rtt_age(now)
        rtt = "-" if self.rtt_ms is None else f"{self.rtt_ms:.1f} ms"
        if age is not None and age > 1.5:
            rtt += f" ({age:.0f} s old)"
        loss = self.loss.recent_pct()
        return [
            "last second" + (" (no frames: link quiet)" if not recent else ""),
            f"end-to-end  p50 {p50 or 0:5.1f} ms   p95 {p95 or 0:5.1f} ms",
            f"capture {avg('capture'):4.1f}  encode {avg('encode'):4.1f}  "
            f"network {avg('network'):4.1f}  queue {avg('queue'):4.1f}  "
            f"decode {avg('decode'):4.1f}  "
            f"present {avg('convert') + avg('wait') + avg('show'):4.1f} ms",
            f"{len(recent):4d} fps   {self.bitrate_kbps(now) / 1000:5.2f} Mbit/s   "
            f"loss {loss or 0:4.2f} %   FEC recovered {self.fec_recovered}",
            f"RTT {rtt}   congestion {self.congestion.state(now, stream_fps)}"
            + (
                f"   target {self.congestion.target_kbps} kbit/s"
                if self.congestion.target_kbps
                else ""
            ),
            f"frames {self.presented} shown, {self.dropped} dropped",
        ]

    # ---- start-up and totals ---------------------------------------------------------

    def startup(self) -> dict[str, Any]:
        first_ms = None
        if self.first_at is not None and self.connect_started is not None:
            first_ms = (self.first_at - self.connect_started) * 1000
        return {
            "first_frame_ms": _r(first_ms),  # from the start of connecting to the first frame
            "handshake_ms": _r(self.handshake_ms),
            "first_second_frames": len(self.startup_totals),
            "first_second_e2e_ms": percentiles(self.startup_totals, (0.5, 0.95), 3),
        }

    def summary(self) -> dict[str, Any]:
        """The ``wavry connect --stats-json`` document."""
        n = max(1, self.presented)
        span = (
            (self.last_at - self.first_at)
            if self.first_at is not None and self.last_at is not None
            else 0.0
        )
        return {
            "frames_received": self.received,
            "frames_presented": self.presented,
            "frames_dropped": self.dropped,
            "drops": dict(sorted(self.drops.items())),
            "covers": {
                "e2e_latency_ms": "every frame shown, from the first (start-up included)",
                "e2e_after_startup_ms": f"frames shown from {STARTUP_S:g} s after the first on",
                "seconds": round(span, 3),
            },
            "e2e_latency_ms": percentiles(self.all_totals, (0.5, 0.95, 0.99), 3),
            "e2e_after_startup_ms": percentiles(self.steady_totals, (0.5, 0.95, 0.99), 3),
            "startup": self.startup(),
            "stages_ms": {s: round(self._stage_sums[s] / n, 3) for s in STAGES}
            | {
                "present": round(
                    sum(self._stage_sums[s] for s in ("convert", "wait", "show")) / n, 3
                )
            },
            # medians over the last shown frames (up to the live window): a mean hides which
            # stage is slow for most frames and which only now and then
            "stages_p50_ms": {
                s: _r(percentile([f.stage(s) for f in self.frames], 0.5)) for s in STAGES
            },
            "bitrate_kbps": round(self.bitrate_kbps(), 1),
            "loss_pct": round(self.loss.total_pct, 3),
            "fec_recovered": self.fec_recovered,
            "rtt_ms": _r(self.rtt_ms),
        }


def write_summary(target: Path | str, summary: dict[str, Any]) -> None:
    """``--stats-json FILE`` (``-``: stdout)."""
    text = json.dumps(summary, indent=2) + "\n"
    if str(target) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def sample_session(stats: ClientStats, session: Any, now: float) -> None:
    """Loss and FEC figures from the session's receive counters (``ClientSession``): the one
    place the client reads them."""
    tr, ch = session.transport, session.channel
    if tr is None or ch is None:
        return
    receiver = getattr(tr, "receiver", None) or tr
    highest = getattr(receiver, "highest_packet_id", None)
    if highest is None:
        highest = tr.nack.highest_packet_id
    stats.loss.sample(now, int(highest), ch.counters.received)
    stats.fec_recovered = tr.stats.fec_recovered
