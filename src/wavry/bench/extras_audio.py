"""Audio latency benchmark: tone bursts through a real `wavry host` → `wavry connect` pair.

Everything runs in a private headless PipeWire session (:class:`PipeWireSession`):

- null sink ``wavry_bench_host``: the host's "speakers"; ``wavry host --audio
  source:wavry_bench_host.monitor`` captures it;
- null sink ``wavry_bench_client``: the client's "speakers" (``PULSE_SINK`` for `wavry connect`);
- an injector plays 1 kHz tone bursts into the host sink (``pacat``, written in real time);
- two recorders (``parec``) record both sinks' monitors with the same wall clock.

Per burst: ``baseline`` = injection → host monitor (the tone path through PipeWire alone),
``capture_to_playback`` = host monitor → client monitor (what Wavry adds: capture, Opus, RIFT,
decode, playout buffer, playback), ``total`` = injection → client monitor. Both recorders have
the same record latency, so it cancels in ``capture_to_playback``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from wavry.platform.audio import BYTES_PER_SAMPLE, RATE, PcmPlayback, _pipe_level
from wavry.runtime.processes import WavryProcess, start_host
from wavry.testing.pwsession import PipeWireSession

__all__ = ["BurstRecorder", "ToneInjector", "detect_onsets", "run_audio_latency"]

TONE_HZ = 1000.0
BURST_S = 0.04
PERIOD_S = 0.25
HOST_SINK = "wavry_bench_host"
CLIENT_SINK = "wavry_bench_client"


def tone(freq: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    """Stereo int16 tone (shape samples×2) with a 1 ms fade-in/out."""
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    x = np.sin(2 * math.pi * freq * t) * amplitude
    ramp = min(48, n // 2)
    x[:ramp] *= np.linspace(0, 1, ramp)
    x[n - ramp :] *= np.linspace(1, 0, ramp)
    s = (x * 32767).astype(np.int16)
    return np.stack([s, s], axis=1)


class ToneInjector:
    """Play silence with tone bursts into ``sink`` in real time; remembers each burst's wall time
    (when its first sample was handed to the sound server)."""

    def __init__(self, sink: str, env: dict[str, str], freq: float = TONE_HZ) -> None:
        self.play = PcmPlayback(sink, latency_ms=5, env=env, stream_name="wavry bench tone")
        self.freq = freq
        self.bursts: list[float] = []
        self.skipped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ToneInjector:
        self.play.start()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        chunk = RATE // 200  # 5 ms
        burst = tone(self.freq, BURST_S)
        silence = np.zeros((chunk, 2), dtype=np.int16)
        period = int(RATE * PERIOD_S)
        rng = np.random.default_rng(7)
        t0 = time.time() + 0.05
        k = 0  # samples written
        next_burst = RATE // 2
        pending: np.ndarray | None = None
        try:
            while not self._stop.is_set():
                due = t0 + k / RATE
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                if pending is None and k >= next_burst:
                    pending = burst
                    self.bursts.append(t0 + k / RATE)
                    next_burst = k + period + int(rng.integers(0, RATE // 50))
                if pending is not None:
                    block, pending = pending[:chunk], pending[chunk:]
                    if len(pending) == 0:
                        pending = None
                    if len(block) < chunk:
                        block = np.vstack([block, silence[: chunk - len(block)]])
                else:
                    block = silence
                    if self.play.queued() >= len(silence.tobytes()):
                        # the server fell behind (a scheduling hiccup): skip silence so the
                        # injection path does not keep that delay for the rest of the run
                        self.skipped += 1
                        k += chunk
                        continue
                self.play.write(block.tobytes())
                k += chunk
        except (OSError, RuntimeError):  # the stream ended with the session
            return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.play.stop()


class BurstRecorder:
    """``parec`` one source; keeps the left channel and maps samples to the wall clock (the
    earliest read-time estimate wins: reads can only be late)."""

    def __init__(self, source: str, env: dict[str, str]) -> None:
        self.argv = [
            "parec", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=2",
            "--latency-msec=2", f"--device={source}", "--client-name=wavry-bench",
        ]  # fmt: skip
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.reads: list[tuple[int, float]] = []  # (samples received so far, wall clock)
        self._thread: threading.Thread | None = None

    def start(self) -> BurstRecorder:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env, bufsize=0
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        block = (RATE // 1000) * BYTES_PER_SAMPLE * 2  # 2 ms
        buf = b""
        while True:
            data = os.read(fd, block)
            if not data:
                return
            now = time.time()
            buf += data
            whole = len(buf) // BYTES_PER_SAMPLE * BYTES_PER_SAMPLE
            if not whole:
                continue
            a = np.frombuffer(buf[:whole], dtype=np.int16).reshape(-1, 2)[:, 0]
            buf = buf[whole:]
            self.chunks.append(a.copy())
            self.samples += len(a)
            with contextlib.suppress(OSError):
                if _pipe_level(fd) == 0:  # caught up: `now` is the end of what we have
                    self.reads.append((self.samples, now))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def signal(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)

    def time_of(self, sample: int, window_s: float = 1.0) -> float:
        """Wall clock of ``sample``: the earliest estimate from the reads that delivered it and
        the audio after it within ``window_s`` (a read can only be late, never early)."""
        ends = np.array([r[0] for r in self.reads], dtype=np.int64)
        times = np.array([r[1] for r in self.reads])
        sel = (ends >= sample) & (ends <= sample + window_s * RATE)
        if not sel.any():
            sel = ends >= sample
        if not sel.any():
            return math.nan
        return float(np.min(times[sel] - (ends[sel] - sample) / RATE))

    def onsets(self, freq: float = TONE_HZ) -> list[float]:
        out = [self.time_of(s) for s in detect_onsets(self.signal(), freq)]
        return [t for t in out if not math.isnan(t)]


def detect_onsets(x: np.ndarray, freq: float = TONE_HZ, min_gap_s: float = 0.1) -> list[int]:
    """Sample indexes where a tone burst starts: the 1 ms RMS envelope crossing a quarter of its
    robust peak after ≥ ``min_gap_s`` of quiet; refined to the first loud sample."""
    if len(x) < RATE // 10:
        return []
    # band-limit around the tone: correlate with a 1 ms complex exponential window
    f = x.astype(np.float64)
    n = 48
    t = np.arange(n) / RATE
    kern = np.exp(-2j * math.pi * freq * t)
    env = np.abs(np.convolve(f, kern, mode="same")) / n
    peak = float(np.percentile(env, 99.5))
    if peak < 200:  # nothing audible
        return []
    thr = peak * 0.25
    loud = env > thr
    out: list[int] = []
    quiet_needed = int(min_gap_s * RATE)
    last_loud = -quiet_needed
    idx = np.flatnonzero(loud)
    for i in idx:
        if i - last_loud >= quiet_needed:
            out.append(int(i))
        last_loud = int(i)
    return out


def _match(
    starts: list[float], onsets: list[float], lo: float = -0.002, hi: float = 0.2
) -> list[float]:
    """For each start, the delay to the first onset within [lo, hi] s (unmatched: skipped; ``hi``
    stays below the burst period so a lost burst is never matched to the next one)."""
    out = []
    j = 0
    onsets = sorted(onsets)
    for s in sorted(starts):
        while j < len(onsets) and onsets[j] < s + lo:
            j += 1
        if j < len(onsets) and onsets[j] <= s + hi:
            out.append(onsets[j] - s)
    return out


def _figures(delays: list[float]) -> dict[str, Any]:
    if not delays:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "min_ms": None, "max_ms": None}
    ms = sorted(d * 1000 for d in delays)
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
        "min_ms": round(ms[0], 2),
        "max_ms": round(ms[-1], 2),
    }


def run_audio_latency(seconds: float = 10.0, *, frame_ms: int = 10) -> dict[str, Any]:
    """Measure tone-burst latency through Wavry and through PipeWire alone, in one run.

    Returns ``{"wavry": {...}, "baseline": {...}, "total": {...}, ...}`` with p50/p95/min/max in
    ms and burst counts; raises RuntimeError when the setup fails (PipeWire missing, host did
    not start, no bursts detected)."""
    if seconds < 2:
        raise ValueError("run_audio_latency needs at least 2 seconds")
    pw = PipeWireSession().start()
    host: WavryProcess | None = None
    client: WavryProcess | None = None
    recorders: list[BurstRecorder] = []
    injector: ToneInjector | None = None
    tmp = tempfile.TemporaryDirectory(prefix="wavry-bench-audio-")
    try:
        for sink in (HOST_SINK, CLIENT_SINK):
            pw.pactl("load-module", "module-null-sink", f"sink_name={sink}", f"rate={RATE}")
        env = pw.env()
        base_env = dict(env, XDG_CONFIG_HOME=str(Path(tmp.name) / "cfg"), PYTHONUNBUFFERED="1")
        host = start_host(
            ["--trust", "any", "--source", "synthetic", "--size", "320x240", "--fps", "30",
             "--audio", f"source:{HOST_SINK}.monitor", "--audio-frame-ms", str(frame_ms)],
            base_env, timeout=20,
        )  # fmt: skip
        stats_path = Path(tmp.name) / "stats.json"
        client = WavryProcess(
            ["connect", host.target, "--headless",
             "--seconds", str(seconds + 2.0), "--stats-json", str(stats_path)],
            dict(base_env, PULSE_SINK=CLIENT_SINK),
        )  # fmt: skip
        recorders = [
            BurstRecorder(f"{HOST_SINK}.monitor", env).start(),
            BurstRecorder(f"{CLIENT_SINK}.monitor", env).start(),
        ]
        time.sleep(1.5)  # session up, playback stream running
        injector = ToneInjector(HOST_SINK, env).start()
        time.sleep(seconds)
        injector.stop()
        time.sleep(0.5)
        for r in recorders:
            r.stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            client.proc.wait(timeout=5.0)  # it writes its stats when its --seconds are up
        client.stop()
        client_out = client.text()
        client = None
        stats: dict[str, Any] = {}
        with contextlib.suppress(OSError, json.JSONDecodeError):
            stats = json.loads(stats_path.read_text())
        at_host = recorders[0].onsets()
        at_client = recorders[1].onsets()
        baseline = _match(injector.bursts, at_host)
        wavry_d = _match(at_host, at_client)
        total = _match(injector.bursts, at_client)
        if not baseline:
            raise RuntimeError("no tone bursts detected at the host sink monitor")
        result: dict[str, Any] = {
            "seconds": seconds,
            "frame_ms": frame_ms,
            "bursts_injected": len(injector.bursts),
            "wavry": _figures(wavry_d),
            "baseline": _figures(baseline),
            "total": _figures(total),
            "target_p50_ms": 40.0,
            "client_audio_stats": stats.get("audio"),
        }
        if not wavry_d:
            result["error"] = "no tone bursts arrived at the client sink: " + client_out[-600:]
        w = result["wavry"]["p50_ms"]
        result["meets_target"] = w is not None and w <= 40.0
        return result
    finally:
        if injector is not None:
            injector.stop()
        for r in recorders:
            r.stop()
        for p in (client, host):
            if p is not None:
                p.stop()
        pw.stop()
        tmp.cleanup()
