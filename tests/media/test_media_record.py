"""Recording: access units remuxed into MP4 (no re-encoding) decode back with the right timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from wavry.media.encode import Codec, Encoder
from wavry.media.record import Recorder

US = 1_000_000


def encoded(codec: Codec, w: int, h: int, n: int) -> list[tuple[bytes, bool]]:
    enc = Encoder(codec, w, h, 30, 500, gop_frames=15)
    out = []
    for i in range(n):
        arr = np.full((h * 3 // 2, w), (i * 7) % 255, dtype=np.uint8)
        arr[: h // 2, : w // 2] = (i * 13) % 255
        f = enc.encode(av.VideoFrame.from_ndarray(arr, format="yuv420p"))
        out.append((f.data, f.keyframe))
    enc.close()
    return out


def probe(path: Path) -> tuple[int, float, str, tuple[int, int]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        duration = float(s.duration * s.time_base)
        return len(frames), duration, s.codec_context.name, (frames[0].width, frames[0].height)


@pytest.mark.parametrize("codec", [Codec.H264, Codec.HEVC, Codec.AV1])
def test_remux_plays_back(tmp_path: Path, codec: Codec) -> None:
    rec = Recorder(tmp_path)
    t0 = 1_700_000_000 * US
    for i, (data, key) in enumerate(encoded(codec, 320, 240, 30)):
        rec.write(data, keyframe=key, timestamp_us=t0 + i * US // 30, codec=codec, width=320,
                  height=240)  # fmt: skip
    rec.close()
    [path] = rec.files
    n, duration, _name, size = probe(path)
    assert n == 30 and size == (320, 240)
    assert duration == pytest.approx(1.0, abs=0.05)  # 30 frames at 30 fps


def test_new_file_on_resolution_change_and_starts_at_keyframe(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    first = encoded(Codec.H264, 320, 240, 20)
    second = encoded(Codec.H264, 256, 144, 10)
    t = 0
    for data, key in first[3:]:  # starts mid-GOP: skipped until the next keyframe (frame 15)
        t += US // 30
        rec.write(data, keyframe=key, timestamp_us=t, codec=Codec.H264, width=320, height=240)
    for data, key in second:
        t += US // 30
        rec.write(data, keyframe=key, timestamp_us=t, codec=Codec.H264, width=256, height=144)
    rec.close()
    assert rec.frames_skipped == 12
    a, b = rec.files
    assert "320x240" in a.name and "256x144" in b.name
    assert probe(a)[0] == 5 and probe(a)[3] == (320, 240)
    assert probe(b)[0] == 10 and probe(b)[3] == (256, 144)


def test_connect_record_end_to_end(tmp_path: Path, proc: Any) -> None:
    args = ("--trust", "any", "--source", "synthetic", "--size", "320x240", "--fps", "30")
    stats = tmp_path / "stats.json"
    with proc.host_process(tmp_path / "h", *args) as (port, _lines):
        r = subprocess.run(
            [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{port}", "--headless",
             "--seconds", "3", "--record", "--record-dir", str(tmp_path / "rec"),
             "--stats-json", str(stats)],
            env=proc.env_for(tmp_path / "c"), capture_output=True, text=True, timeout=25,
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [path] = list((tmp_path / "rec").glob("*.mp4"))
    assert "recording saved" in r.stderr
    n, duration, name, size = probe(path)
    data = json.loads(stats.read_text())
    decoded = data["frames_presented"] + data["frames_dropped"]
    assert name == "h264" and size == (320, 240)
    assert n >= 30 and abs(n - decoded) <= 2
    assert 0.5 * (n / 30) <= duration <= 2 * (n / 30) + 0.5
    assert os.path.getsize(path) > 1000


def test_host_record_end_to_end(tmp_path: Path, proc: Any) -> None:
    args = ("--trust", "any", "--source", "synthetic", "--size", "320x240", "--fps", "30")
    rec_dir = tmp_path / "hrec"
    with proc.host_process(tmp_path / "h", *args, "--record", "--record-dir", str(rec_dir)) as (
        port,
        lines,
    ):
        r = subprocess.run(
            [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{port}", "--headless",
             "--seconds", "2"],
            env=proc.env_for(tmp_path / "c"), capture_output=True, text=True, timeout=25,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    assert "recording saved" in "".join(lines)  # written when the host shuts down
    [path] = list(rec_dir.glob("wavry-host-*.mp4"))
    n, duration, name, size = probe(path)
    assert name == "h264" and size == (320, 240) and n >= 30
    assert duration > 0.5
