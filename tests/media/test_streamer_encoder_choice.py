"""The streamer encodes with the H.264 encoder the hardware probe chose (here: GStreamer's
x264enc standing in for a VA-API/NVENC element, through the same GStreamer encoder class),
and with libx264 when the probe found none."""

from __future__ import annotations

import asyncio

import pytest

from wavry.media.encode import Codec, Encoder
from wavry.media.gst_encode import GstEncoder, gst_element_available
from wavry.media.synthetic import SyntheticCapture
from wavry.runtime import streamer as streamer_mod
from wavry.runtime.streamer import Streamer


def _run(monkeypatch: pytest.MonkeyPatch, choice: str) -> tuple[Streamer, list[bool]]:
    monkeypatch.setattr(streamer_mod, "_HW_CHOICE", choice)
    keys: list[bool] = []

    async def main() -> Streamer:
        loop = asyncio.get_running_loop()
        cap = SyntheticCapture(320, 240, 30)
        cap.start()
        s = Streamer(
            cap, Codec.H264, 320, 240, 30, 1000, lambda f, e: keys.append(e.keyframe), loop
        )
        s.start()
        try:
            for _ in range(100):
                await asyncio.sleep(0.02)
                if len(keys) >= 5:
                    break
        finally:
            await loop.run_in_executor(None, s.stop)
            cap.stop()
        return s

    return asyncio.run(main()), keys


def test_libx264_when_no_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    s, keys = _run(monkeypatch, "libx264")
    assert isinstance(s.encoder, Encoder) and s.encoder_name == "libx264"
    assert len(keys) >= 5 and keys[0]


@pytest.mark.skipif(bool(gst_element_available("x264enc")), reason="GStreamer x264enc missing")
def test_the_probed_gstreamer_encoder_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    s, keys = _run(monkeypatch, "gst:x264enc")
    assert isinstance(s.encoder, GstEncoder) and s.encoder_name == "gst:x264enc"
    assert len(keys) >= 5 and keys[0] and not all(keys)
