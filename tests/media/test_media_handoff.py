"""LatestFrameSlot: newest wins, stale items counted, wakes threads and asyncio."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from wavry.media.handoff import LatestFrameSlot, SlotClosed


def test_overwrite_counts_drops() -> None:
    slot: LatestFrameSlot[int] = LatestFrameSlot()
    assert slot.put(1)
    assert not slot.put(2)
    assert not slot.put(3)
    assert slot.dropped == 2
    assert slot.take_nowait() == 3
    assert slot.take_nowait() is None
    assert slot.put(4)
    assert slot.get(timeout=0) == 4
    assert slot.get(timeout=0.01) is None


def test_thread_consumer_never_sees_older_after_newer() -> None:
    slot: LatestFrameSlot[int] = LatestFrameSlot()
    seen: list[int] = []

    def consume() -> None:
        try:
            while True:
                item = slot.get(timeout=2)
                if item is None:
                    return
                seen.append(item)
                time.sleep(0.0005)
        except SlotClosed:
            return

    t = threading.Thread(target=consume)
    t.start()
    for i in range(2000):
        slot.put(i)
    time.sleep(0.05)
    slot.close()
    t.join(3)
    assert not t.is_alive()
    assert seen == sorted(seen) and seen[-1] == 1999
    assert slot.dropped + len(seen) == 2000
    assert slot.dropped > 0


def test_asyncio_waiter_woken_from_thread() -> None:
    async def main() -> list[int]:
        slot: LatestFrameSlot[int] = LatestFrameSlot()

        def produce() -> None:
            for i in range(5):
                time.sleep(0.01)
                slot.put(i)
            time.sleep(0.05)
            slot.close()

        threading.Thread(target=produce).start()
        got: list[int] = []
        with pytest.raises(SlotClosed):
            while True:
                got.append(await asyncio.wait_for(slot.get_async(), 2))
        return got

    got = asyncio.run(main())
    assert got == sorted(got) and got[-1] == 4


def test_put_after_close_raises() -> None:
    slot: LatestFrameSlot[str] = LatestFrameSlot()
    slot.close()
    with pytest.raises(SlotClosed):
        slot.put("x")
    with pytest.raises(SlotClosed):
        slot.get(timeout=0.1)


def test_capture_to_encoder_pipeline_drops_stale_frames() -> None:
    from wavry.media.encode import Codec, Encoder
    from wavry.media.marker import read_marker
    from wavry.media.synthetic import SyntheticCapture
    from wavry.media.types import CapturedFrame

    slot: LatestFrameSlot[CapturedFrame] = LatestFrameSlot()
    cap = SyntheticCapture(320, 180, 200)  # paced at 200 fps
    cap.start()

    def produce() -> None:
        for _ in range(60):
            slot.put(cap.grab())
        slot.close()

    enc = Encoder(Codec.H264, 320, 180, 200, 500)
    taken: list[tuple[int, int]] = []
    producer = threading.Thread(target=produce)
    producer.start()
    try:
        while True:
            shot = slot.get(timeout=2)
            assert shot is not None
            # What we take is always the newest frame captured so far.
            taken.append((shot.frame_index, slot.put_count - 1))
            enc.encode(shot.image)
            assert read_marker(shot.image) == (shot.frame_index, shot.capture_ts)
            time.sleep(0.02)  # a consumer slower than capture
    except SlotClosed:
        pass
    producer.join(3)
    # (a put may land between the take and reading put_count: at most one newer)
    assert all(0 <= newest - idx <= 1 for idx, newest in taken)
    assert slot.dropped > 0 and slot.dropped + len(taken) == 60
