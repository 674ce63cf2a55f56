"""Opus packetisation (PyAV libopus): one frame in, one raw packet out, decodes back; the
`--audio` spec parser; the recorder's Opus track."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from wavry.media.audio import OpusDecoder, OpusEncoder, frame_bytes
from wavry.media.encode import Codec, Encoder
from wavry.media.record import Recorder, _opus_samples
from wavry.platform.audio import AudioSpec


def sine(freq: float, samples: int, start: int = 0) -> np.ndarray:
    t = (np.arange(samples) + start) / 48_000
    s = (np.sin(2 * math.pi * freq * t) * 12_000).astype(np.int16)
    return np.stack([s, s], axis=1)


def dominant_hz(pcm: np.ndarray) -> float:
    x = pcm.astype(np.float64) * np.hanning(len(pcm))
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / 48_000)[int(np.argmax(spec))])


@pytest.mark.parametrize("frame_ms", [5, 10])
def test_one_frame_one_packet_and_back(frame_ms: int) -> None:
    enc, dec = OpusEncoder(frame_ms), OpusDecoder()
    n = 48 * frame_ms
    assert frame_bytes(frame_ms) == n * 4
    out = []
    for i in range(60):
        packets = enc.encode(sine(880, n, i * n).tobytes())
        assert len(packets) == 1  # exactly one raw Opus packet per frame, no added delay
        p = packets[0]
        assert 0 < len(p) < 400 and _opus_samples(p) == n
        pcm = dec.decode(p)
        assert len(pcm) == n * 4
        out.append(np.frombuffer(pcm, dtype="<i2").reshape(-1, 2))
    decoded = np.concatenate(out)[48 * 50 :, 0]  # past the codec's start-up
    assert abs(dominant_hz(decoded) - 880) < 10
    assert np.sqrt(np.mean(decoded.astype(np.float64) ** 2)) > 5000


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="5 or 10 ms"):
        OpusEncoder(20)
    with pytest.raises(ValueError, match="1920 bytes"):
        OpusEncoder(10).encode(b"\0" * 100)
    with pytest.raises(ValueError, match="empty"):
        OpusDecoder().decode(b"")
    with pytest.raises(ValueError, match="undecodable"):
        OpusDecoder().decode(b"\xff" * 3)


def test_audio_spec() -> None:
    assert AudioSpec.parse("system") == AudioSpec("system")
    assert AudioSpec.parse("MIC") == AudioSpec("mic")
    assert AudioSpec.parse("off") == AudioSpec("off")
    assert AudioSpec.parse("source:alsa_input.usb") == AudioSpec("source", "alsa_input.usb")
    assert AudioSpec.parse("app:Firefox") == AudioSpec("app", "Firefox")
    assert str(AudioSpec("app", "mpv")) == "app:mpv"
    for bad in ("", "app:", "source", "speakers", "system:x"):
        with pytest.raises(ValueError, match="--audio must be"):
            AudioSpec.parse(bad)


def test_recording_has_an_opus_track_that_decodes(tmp_path: Path) -> None:
    w, h = 160, 96
    venc = Encoder(Codec.H264, w, h, 30, 400, gop_frames=30)
    aenc = OpusEncoder(10)
    rec = Recorder(tmp_path, audio=True)
    t0 = 1_700_000_000_000_000
    audio_i = 0
    for i in range(30):  # 1 s of video at 30 fps, 10 ms audio packets interleaved
        ts = t0 + i * 33_333
        arr = np.full((h * 3 // 2, w), (i * 5) % 255, dtype=np.uint8)
        f = venc.encode(av.VideoFrame.from_ndarray(arr, format="yuv420p"))
        rec.write(f.data, keyframe=f.keyframe, timestamp_us=ts, codec=Codec.H264,
                  width=w, height=h)  # fmt: skip
        while t0 + audio_i * 10_000 < ts + 33_333:
            [pkt] = aenc.encode(sine(440, 480, audio_i * 480).tobytes())
            rec.write_audio(pkt, timestamp_us=t0 + audio_i * 10_000)
            audio_i += 1
    rec.close()
    venc.close()
    [path] = rec.files
    assert rec.audio_written >= 95
    with av.open(str(path)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        a = c.streams.audio[0]
        assert a.codec_context.name in ("opus", "libopus") and a.sample_rate == 48_000
        assert a.codec_context.channels == 2
        pcm = np.concatenate([fr.to_ndarray()[0] for fr in c.decode(a)])
    assert len(pcm) >= 0.9 * 48_000
    assert abs(dominant_hz(pcm[4800:]) - 440) < 10
    with av.open(str(path)) as c:
        assert len(list(c.decode(c.streams.video[0]))) == 30


def test_recording_without_audio_has_no_audio_track(tmp_path: Path) -> None:
    w, h = 160, 96
    venc = Encoder(Codec.H264, w, h, 30, 400)
    rec = Recorder(tmp_path)
    f = venc.encode(av.VideoFrame.from_ndarray(np.zeros((h * 3 // 2, w), np.uint8), "yuv420p"))
    rec.write(f.data, keyframe=True, timestamp_us=1, codec=Codec.H264, width=w, height=h)
    rec.write_audio(b"\xfc\xff\xfe", timestamp_us=2)  # ignored: no audio track
    rec.close()
    venc.close()
    assert rec.audio_skipped == 1
    with av.open(str(rec.files[0])) as c:
        assert not c.streams.audio


def test_cli_rejects_a_bad_audio_choice() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "wavry", "host", "--audio", "speakers", "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 2
    assert "--audio must be system, mic, source:NAME, app:NAME or off" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "wavry", "host", "--audio-frame-ms", "7", "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 2 and "5 or 10" in r.stderr


def test_host_drops_audio_that_reaches_the_loop_late() -> None:
    import time

    from wavry.media.audio_session import HostAudio

    sent: list[int] = []
    ha = HostAudio(AudioSpec("off"), lambda _t: None)
    ha._send = lambda ts, _p: sent.append(ts)
    now_us = int(time.time() * 1e6)
    ha._deliver(now_us - 15_000, b"fresh")  # a 10 ms frame plus capture latency: on time
    ha._deliver(now_us - 200_000, b"stale")  # the loop was stuck: dropped, not queued
    assert sent == [now_us - 15_000] and ha.late_dropped == 1
