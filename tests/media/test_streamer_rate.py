"""A source that ignores set_rate (the synthetic pattern) is held to the stream's frame rate by
the streamer's RateCap: the extra pictures are dropped and counted, never encoded."""

from __future__ import annotations

import asyncio
import time

import pytest

from wavry.media.encode import Codec
from wavry.media.pacing import CAPTURE_HEADROOM
from wavry.media.synthetic import SyntheticCapture
from wavry.runtime import streamer as streamer_mod
from wavry.runtime.streamer import SOURCE_BURST_PICTURES, Streamer


def test_a_faster_source_is_capped_to_the_streams_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streamer_mod, "_HW_CHOICE", "libx264")
    sent: list[float] = []

    async def main() -> Streamer:
        loop = asyncio.get_running_loop()
        cap = SyntheticCapture(320, 240, 120)  # 120 pictures a second, whatever set_rate says
        cap.start()
        s = Streamer(cap, Codec.H264, 320, 240, 20, 500, lambda f, e: sent.append(time.monotonic()),
                     loop)  # fmt: skip
        s.start()
        try:
            await asyncio.sleep(1.5)
        finally:
            await loop.run_in_executor(None, s.stop)
            cap.stop()
        return s

    s = asyncio.run(main())
    assert s.stats.dropped_rate > 0
    # 20 fps with the capture's headroom for 1.5 s, plus the bucket's burst (against 180
    # pictures the source made)
    assert 5 <= len(sent) <= 20 * CAPTURE_HEADROOM * 1.5 + SOURCE_BURST_PICTURES, len(sent)
    assert s.stats.captured >= len(sent) + s.stats.dropped_rate
