"""Audio end to end, real `wavry host` / `wavry connect` processes in a private headless PipeWire
session with null sinks on both sides:

- a tone played on the host's output arrives at the client's output (numpy FFT), the stats JSON
  has an ``audio`` section next to the old keys, and the host's recording has an Opus track;
- the client's microphone tone arrives in the host's virtual source, which goes away afterwards;
- audio capture failing (at start or mid-session) never ends the session: video keeps coming.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from wavry.testing.pwsession import PipeWireSession, probe

pytestmark = pytest.mark.skipif(not probe().ok, reason="PipeWire not installed: " + probe().detail)

RATE = 48_000


@pytest.fixture(scope="module")
def pw() -> Iterator[PipeWireSession]:
    session = PipeWireSession().start()
    old = session.apply_to_os_environ()  # `proc.host_process` children inherit os.environ
    try:
        yield session
    finally:
        session.restore_environ(old)
        session.stop()


def null_sink(pw: PipeWireSession, name: str) -> str:
    return pw.pactl("load-module", "module-null-sink", f"sink_name={name}", f"rate={RATE}").strip()


def sink_names(pw: PipeWireSession) -> set[str]:
    out = pw.pactl("list", "short", "sinks")
    return {ln.split("\t")[1] for ln in out.splitlines() if "\t" in ln}


def source_names(pw: PipeWireSession) -> set[str]:
    out = pw.pactl("list", "short", "sources")
    return {ln.split("\t")[1] for ln in out.splitlines() if "\t" in ln}


class TonePlayer:
    """pacat playing a continuous sine into ``sink`` (as application ``app``) until stopped."""

    def __init__(self, pw: PipeWireSession, sink: str, freq: float, app: str = "wavrytone"):
        self.proc = subprocess.Popen(
            ["pacat", "--playback", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=2",
             f"--device={sink}", f"--client-name={app}", "--latency-msec=20"],
            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, env=pw.env(),
        )  # fmt: skip
        t = np.arange(RATE // 10) / RATE  # 100 ms = 100 whole periods of multiples of 10 Hz
        s = (np.sin(2 * math.pi * freq * t) * 12_000).astype(np.int16)
        self.block = np.stack([s, s], axis=1).tobytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def wait_playing(self, pw: PipeWireSession, app: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while app not in pw.pactl("list", "sink-inputs"):
            assert time.monotonic() < deadline, f"{app} never started playing"
            time.sleep(0.05)

    def _run(self) -> None:
        assert self.proc.stdin is not None
        try:
            while self.proc.poll() is None:
                self.proc.stdin.write(self.block)  # pacat paces us (blocking pipe)
        except (BrokenPipeError, OSError, ValueError):
            return

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._thread.join(timeout=2)


class Recording:
    """parec of ``source`` into memory."""

    def __init__(self, pw: PipeWireSession, source: str):
        self.proc = subprocess.Popen(
            ["parec", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=2",
             f"--device={source}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=pw.env(),
        )  # fmt: skip
        self.data = bytearray()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(65536):
            self.data += chunk

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self._thread.join(timeout=2)
        n = len(self.data) // 4 * 4
        return np.frombuffer(bytes(self.data[:n]), dtype="<i2").reshape(-1, 2)[:, 0]


def dominant_hz(x: np.ndarray) -> tuple[float, float]:
    """(frequency of the strongest bin, RMS) of a recording. Tests allow ±10 Hz: on a busy
    machine the playout buffer drops 2.5 ms slices, which smears the peak a little."""
    x = x.astype(np.float64)
    if len(x) < RATE // 10:
        return 0.0, 0.0
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spec[:5] = 0  # DC
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(f[int(np.argmax(spec))]), float(np.sqrt(np.mean(x**2)))


def connect(
    proc: SimpleNamespace, home: Path, port: int, seconds: float, *extra: str,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict]:  # fmt: skip
    stats = home / "stats.json"
    r = subprocess.run(
        [*proc.WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--seconds", str(seconds),
         "--stats-json", str(stats), *extra],
        env=env or proc.env_for(home), capture_output=True, text=True, timeout=seconds + 40,
    )  # fmt: skip
    data = json.loads(stats.read_text()) if stats.exists() else {}
    return r, data


def test_host_tone_reaches_client_sink_and_recording(
    pw: PipeWireSession, proc: SimpleNamespace, tmp_path: Path
) -> None:
    mods = [null_sink(pw, "host_speakers"), null_sink(pw, "client_speakers")]
    pw.pactl("set-default-sink", "host_speakers")  # default --audio system captures its monitor
    tone = TonePlayer(pw, "host_speakers", 660.0)
    tone.wait_playing(pw, "wavrytone")
    rec_dir = tmp_path / "rec"
    try:
        with proc.host_process(
            tmp_path, *proc.HOST_ARGS, "--record", "--record-dir", str(rec_dir)
        ) as (port, lines):
            recording = Recording(pw, "client_speakers.monitor")
            env = dict(proc.env_for(tmp_path), PULSE_SINK="client_speakers")
            r, stats = connect(proc, tmp_path, port, 4.0, env=env)
            heard = recording.stop()
        host_out = "".join(lines)
    finally:
        tone.stop()
        for m in mods:
            pw.pactl("unload-module", m)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "playing the host's audio" in r.stderr
    assert "audio: system mix (host_speakers.monitor)" in host_out, host_out
    assert "audio capture unavailable" not in host_out, host_out
    # the old keys are intact, audio is a new section
    assert stats["frames_presented"] > 30 and "e2e_latency_ms" in stats
    audio = stats["audio"]
    assert audio["packets"] > 250, audio  # 4 s of 10 ms packets, minus start-up
    assert audio["decode_errors"] == 0 and audio["error"] is None
    # most of it is played; what is dropped (late, oldest first) is a minority even on a busy box
    assert audio["played_ms"] > 0.6 * audio["packets"] * 10, audio
    assert audio["drops"] < audio["packets"] * 0.25, audio
    assert audio["buffer_ms"]["max"] <= 20.0 + 1e-6, audio
    assert audio["av_offset_ms"]["samples"] > 100 and abs(audio["av_offset_ms"]["p50"]) < 200
    hz, rms = dominant_hz(heard[RATE:])  # skip the first second (session set-up)
    assert abs(hz - 660.0) < 10, (hz, rms)
    assert rms > 1000, rms
    # the host's recording has the audio next to the video
    [mp4] = sorted(rec_dir.glob("*.mp4"))
    with av.open(str(mp4)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(c.streams.audio[0])])
    assert len(pcm) > 2 * RATE
    hz, _ = dominant_hz((pcm[RATE // 2 :] * 32767).astype(np.int16))
    assert abs(hz - 660.0) < 10, hz


def test_client_mic_reaches_host_virtual_source(
    pw: PipeWireSession, proc: SimpleNamespace, tmp_path: Path
) -> None:
    mods = [null_sink(pw, "client_mic_in")]
    mods.append(  # the client's "microphone": a real (non-monitor) source fed by a null sink
        pw.pactl(
            "load-module", "module-remap-source", "master=client_mic_in.monitor",
            "source_name=client_mic",
        ).strip()
    )  # fmt: skip
    pw.pactl("set-default-source", "client_mic")
    tone = TonePlayer(pw, "client_mic_in", 440.0)
    tone.wait_playing(pw, "wavrytone")
    try:
        with proc.host_process(tmp_path, *proc.HOST_ARGS, "--audio", "off") as (port, lines):
            holder: dict[str, object] = {}

            def run_client() -> None:
                holder["r"] = connect(proc, tmp_path, port, 5.0, "--mic", "default", "--no-audio")

            t = threading.Thread(target=run_client)
            t.start()
            deadline = time.monotonic() + 15
            while "wavry_mic_source" not in source_names(pw):
                assert time.monotonic() < deadline, "the host made no virtual microphone"
                time.sleep(0.1)
            recording = Recording(pw, "wavry_mic_source")
            t.join(timeout=60)
            heard = recording.stop()
            # the client has left: the host removed its virtual microphone
            deadline = time.monotonic() + 10
            while "wavry_mic" in sink_names(pw) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "wavry_mic" not in sink_names(pw)
            assert "wavry_mic_source" not in source_names(pw)
    finally:
        tone.stop()
        for m in reversed(mods):
            pw.pactl("unload-module", m)
    r, stats = holder["r"]  # type: ignore[misc]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "microphone: microphone (client_mic) → host" in r.stderr, r.stderr
    assert stats["audio"]["mic"]["packets_sent"] > 300, stats["audio"]
    assert stats["audio"]["enabled"] is False
    hz, rms = dominant_hz(heard[RATE // 2 :])
    assert abs(hz - 440.0) < 10 and rms > 1000, (hz, rms)
    out = "".join(lines)
    assert "microphone from clients → virtual source wavry_mic_source" in out, out
    assert "microphone stream started" in out, out


def test_capture_failure_at_start_keeps_the_session(
    pw: PipeWireSession, proc: SimpleNamespace, tmp_path: Path
) -> None:
    with proc.host_process(tmp_path, *proc.HOST_ARGS, "--audio", "source:no_such_source") as (
        port,
        lines,
    ):
        r, stats = connect(proc, tmp_path, port, 2.5)
    out = "".join(lines)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "audio capture unavailable (source:no_such_source)" in out, out
    assert "no audio source named 'no_such_source'" in out
    assert stats["frames_presented"] > 30
    assert stats["audio"]["packets"] == 0


def test_capture_ending_mid_session_keeps_the_session(
    pw: PipeWireSession, proc: SimpleNamespace, tmp_path: Path
) -> None:
    """`--audio app:NAME` follows one application; when it quits, capture ends, video goes on."""
    mods = [null_sink(pw, "app_speakers")]
    tone = TonePlayer(pw, "app_speakers", 550.0, app="wavry-test-app")
    tone.wait_playing(pw, "wavry-test-app")
    try:
        with proc.host_process(tmp_path, *proc.HOST_ARGS, "--audio", "app:wavry-test-app") as (
            port,
            lines,
        ):
            holder: dict[str, object] = {}

            def run_client() -> None:
                holder["r"] = connect(proc, tmp_path, port, 6.0, "--no-audio")

            t = threading.Thread(target=run_client)
            t.start()
            deadline = time.monotonic() + 30
            while "wavry capture" not in pw.pactl("list", "source-outputs"):
                assert time.monotonic() < deadline, "the host never started capturing"
                time.sleep(0.05)
            time.sleep(1.5)
            tone.stop()  # the application quits mid-session
            t.join(timeout=60)
    finally:
        tone.stop()
        for m in mods:
            pw.pactl("unload-module", m)
    out = "".join(lines)
    r, stats = holder["r"]  # type: ignore[misc]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "audio: application wavry-test-app" in out, out
    assert "audio capture stopped" in out and "video continues" in out, out
    assert stats["audio"]["packets"] > 50  # audio came while the app played
    assert stats["frames_presented"] > 90  # and video for the whole 6 s (30 fps)
