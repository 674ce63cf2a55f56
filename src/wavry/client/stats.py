"""Per-frame latency accounting on the client: per-stage times, end-to-end percentiles, the
stats overlay text and the `--stats-json` summary.

End-to-end latency of a presented frame = presentation time (client clock, corrected by the
Ping/Pong clock offset) − the frame's capture timestamp (host clock). Stages:
capture and encode come from the host (VideoChunk.capture_us / encode_us); network = last chunk
arrival − (capture + capture_us + encode_us); decode and present are measured here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from wavry.percentile import percentile
from wavry.rift import rift_pb2

STAGES = ("capture", "encode", "network", "decode", "present")


@dataclass(frozen=True, slots=True)
class FrameTiming:
    frame_id: int
    capture_ms: float
    encode_ms: float
    network_ms: float
    decode_ms: float
    present_ms: float
    total_ms: float
    size_bytes: int
    presented_at: float

    def to_message(self) -> rift_pb2.LatencyStats:
        def us(ms: float) -> int:
            return max(0, min(0xFFFFFFFF, round(ms * 1000)))

        return rift_pb2.LatencyStats(
            frame_id=self.frame_id,
            capture_us=us(self.capture_ms),
            encode_us=us(self.encode_ms),
            network_us=us(self.network_ms),
            decode_us=us(self.decode_ms),
            render_us=us(self.present_ms),
            total_us=us(self.total_ms),
        )


def frame_timing(
    *,
    frame_id: int,
    timestamp_us: int,
    capture_us: int,
    encode_us: int,
    last_chunk_at: float,
    decode_start: float,
    decode_end: float,
    presented_at: float,
    clock_offset_s: float,
    size_bytes: int,
) -> FrameTiming:
    """Timing of one presented frame; client times are wall-clock seconds."""
    captured = timestamp_us / 1e6
    sent = captured + (capture_us + encode_us) / 1e6
    arrived_host_clock = last_chunk_at + clock_offset_s
    return FrameTiming(
        frame_id=frame_id,
        capture_ms=capture_us / 1000,
        encode_ms=encode_us / 1000,
        network_ms=max(0.0, (arrived_host_clock - sent) * 1000),
        decode_ms=(decode_end - decode_start) * 1000,
        present_ms=(presented_at - decode_end) * 1000,
        total_ms=(presented_at + clock_offset_s - captured) * 1000,
        size_bytes=size_bytes,
        presented_at=presented_at,
    )


class ClientStats:
    """A rolling window of presented frames plus session counters."""

    def __init__(self, window: int = 600) -> None:
        self.frames: deque[FrameTiming] = deque(maxlen=window)
        self.all_totals: list[float] = []
        self.presented = 0
        self.dropped = 0
        self.bytes_total = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.rtt_ms: float | None = None
        self.loss_pct = 0.0
        self.fec_recovered = 0
        self.bitrate_target_kbps: int | None = None
        self.congestion_state = "-"
        self._stage_sums = dict.fromkeys(STAGES, 0.0)

    def record(self, t: FrameTiming) -> None:
        self.frames.append(t)
        self.all_totals.append(t.total_ms)
        if len(self.all_totals) > 200_000:
            del self.all_totals[:100_000]
        self.presented += 1
        self.bytes_total += t.size_bytes
        self.first_at = t.presented_at if self.first_at is None else self.first_at
        self.last_at = t.presented_at
        for stage, v in zip(
            STAGES,
            (t.capture_ms, t.encode_ms, t.network_ms, t.decode_ms, t.present_ms),
            strict=True,
        ):
            self._stage_sums[stage] += v

    def fps(self, now: float, span: float = 1.0) -> float:
        return sum(1 for f in self.frames if f.presented_at > now - span) / span

    def bitrate_kbps(self, now: float | None = None, span: float = 1.0) -> float:
        if now is None:
            if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
                return 0.0
            return self.bytes_total * 8 / (self.last_at - self.first_at) / 1000
        recent = sum(f.size_bytes for f in self.frames if f.presented_at > now - span)
        return recent * 8 / span / 1000

    def overlay_lines(self, now: float) -> list[str]:
        recent = [f for f in self.frames if f.presented_at > now - 2.0]
        totals = [f.total_ms for f in recent]

        def avg(attr: str) -> float:
            return sum(getattr(f, attr) for f in recent) / len(recent) if recent else 0.0

        p50, p95 = percentile(totals, 0.5), percentile(totals, 0.95)
        rtt = f"{self.rtt_ms:.1f} ms" if self.rtt_ms is not None else "-"
        return [
            f"end-to-end  p50 {p50 or 0:5.1f} ms   p95 {p95 or 0:5.1f} ms",
            f"capture {avg('capture_ms'):4.1f}  encode {avg('encode_ms'):4.1f}  "
            f"network {avg('network_ms'):4.1f}  decode {avg('decode_ms'):4.1f}  "
            f"present {avg('present_ms'):4.1f} ms",
            f"{self.fps(now):4.0f} fps   {self.bitrate_kbps(now) / 1000:5.2f} Mbit/s   "
            f"loss {self.loss_pct:4.2f} %   FEC recovered {self.fec_recovered}",
            f"RTT {rtt}   congestion {self.congestion_state}"
            + (f"   target {self.bitrate_target_kbps} kbit/s" if self.bitrate_target_kbps else ""),
            f"frames {self.presented} presented, {self.dropped} dropped",
        ]

    def summary(self) -> dict[str, Any]:
        """The `wavry connect --stats-json` document."""
        totals = self.all_totals
        n = max(1, self.presented)

        def r(v: float | None) -> float | None:
            return round(v, 3) if v is not None else None

        return {
            "frames_presented": self.presented,
            "frames_dropped": self.dropped,
            "e2e_latency_ms": {
                "p50": r(percentile(totals, 0.5)),
                "p95": r(percentile(totals, 0.95)),
                "p99": r(percentile(totals, 0.99)),
            },
            "stages_ms": {s: round(self._stage_sums[s] / n, 3) for s in STAGES},
            "bitrate_kbps": round(self.bitrate_kbps(), 1),
            "loss_pct": round(self.loss_pct, 3),
            "fec_recovered": self.fec_recovered,
            "rtt_ms": r(self.rtt_ms),
        }
