"""Synthetic source: sizes, pacing, motion, marker at 720p through x264, probes."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from wavry.media.decode import Decoder
from wavry.media.encode import Codec, Encoder
from wavry.media.marker import luma_of, marker_layout, read_marker
from wavry.media.probes import all_probes
from wavry.media.synthetic import SyntheticCapture, probe
from wavry.media.types import CaptureError


def test_frames_move_and_carry_marker() -> None:
    cap = SyntheticCapture(320, 180, 30, paced=False, clock_us=lambda: 42)
    with pytest.raises(CaptureError):
        cap.grab()
    with cap:
        a, b = cap.grab(), cap.grab()
    assert (a.frame_index, b.frame_index) == (0, 1)
    assert a.capture_ts == 42 and a.capture_us >= 0
    assert (a.image.width, a.image.height, a.image.format.name) == (320, 180, "yuv420p")
    assert read_marker(a.image) == (0, 42) and read_marker(b.image) == (1, 42)
    band = marker_layout(320).height
    assert not np.array_equal(luma_of(a.image)[band:], luma_of(b.image)[band:])


def test_paced_grab_holds_the_frame_rate() -> None:
    cap = SyntheticCapture(256, 144, 50)
    with cap:
        t0 = time.monotonic()
        shots = [cap.grab() for _ in range(11)]
        elapsed = time.monotonic() - t0
    assert 0.17 < elapsed < 0.5, elapsed  # 10 intervals of 20 ms
    assert all(b.capture_ts > a.capture_ts for a, b in itertools.pairwise(shots))


@pytest.mark.parametrize("size", [(100, 100), (321, 240), (640, 30)])
def test_rejects_unusable_sizes(size: tuple[int, int]) -> None:
    with pytest.raises(CaptureError):
        SyntheticCapture(*size)


def test_marker_at_720p_through_x264_at_2_mbps() -> None:
    # 2 Mbit/s at 720p60 is ~4 kB per frame; at 1 Mbit/s the frames right after the keyframe
    # are starved by VBV and read as None (never wrong), steady state reads again.
    cap = SyntheticCapture(1280, 720, 60, paced=False)
    cap.start()
    assert marker_layout(1280).block == 16
    enc = Encoder(Codec.H264, 1280, 720, 60, bitrate_kbps=2000)
    dec = Decoder(Codec.H264)
    sent: dict[int, int] = {}
    for _ in range(20):
        shot = cap.grab()
        sent[shot.frame_index] = shot.capture_ts
        out = dec.decode(enc.encode(shot.image).data)
        assert out is not None
        got = read_marker(out.frame)
        if shot.frame_index >= 5 or shot.frame_index == 0:
            assert got == (shot.frame_index, shot.capture_ts)
        elif got is not None:  # VBV-starved frames right after the keyframe
            assert sent[got[0]] == got[1]


def test_decoder_survives_garbage_and_probes_report() -> None:
    dec = Decoder(Codec.H264)
    assert dec.decode(b"\x00\x00\x00\x01\x65garbage") is None
    assert probe().ok
    names = {r.name: r for r in all_probes(display=":4093")}
    assert names["synthetic"].ok and names["libx264"].ok
    assert not names["x11"].ok and not names["xtest"].ok and not names["wayland"].ok
    assert all(r.ok or r.remedy for r in names.values() if r.name not in ("x11", "xtest"))
