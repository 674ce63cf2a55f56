"""The decode thread and its hand-off (wavry.client.pipeline) with the real H.264 encoder and
decoder: every frame is decoded (references stay intact), only the newest reaches the window,
the rest are counted, and a decoder far behind drops its queue and waits for a keyframe."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from wavry.client.pipeline import DecodeJob, DecodeWorker
from wavry.media.decode import Decoder
from wavry.media.encode import Codec, Encoder
from wavry.media.synthetic import SyntheticCapture


@dataclass
class Unit:  # the fields of rift's AssembledFrame the pipeline reads
    frame_id: int
    data: bytes
    keyframe: bool


def encoded(n: int, keyframes: tuple[int, ...] = (0,)) -> list[Unit]:
    cap = SyntheticCapture(320, 240, paced=False)
    enc = Encoder(Codec.H264, 320, 240, fps=60, bitrate_kbps=1000)
    out = []
    for i in range(n):
        f = enc.encode(cap.make_frame(i, i * 16_667), force_keyframe=i in keyframes)
        out.append(Unit(i, f.data, f.keyframe))
    return out


def wait_for(cond: object, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_every_frame_decoded_only_the_newest_handed_over() -> None:
    units = encoded(30)
    ready = threading.Event()
    prepared: list[int] = []

    def prepare(frame: object) -> object:
        prepared.append(1)
        return frame

    w = DecodeWorker(Decoder(Codec.H264), prepare=prepare, on_ready=ready.set,
                     on_broken=lambda fid: None, max_backlog_s=10.0)  # fmt: skip
    try:
        for u in units:  # a burst, faster than anything is shown (nobody takes)
            assert w.submit(DecodeJob(u, time.monotonic()))
        wait_for(lambda: w.decoded + w.errors == 30)
        assert w.errors == 0 and w.decoded == 30  # the decoder saw every reference
        got = w.take()
        assert got is not None and got.job.frame.frame_id == 29
        assert w.take() is None
        assert ready.is_set()
        # each of the other 29 is counted once: never converted, or replaced in the slot
        assert w.not_prepared + w.superseded == 29
        assert len(prepared) == 1 + w.superseded
    finally:
        w.close()


class GatedDecoder(Decoder):
    """The real decoder, held at its first frame until the test lets it go (a busy CPU)."""

    def __init__(self) -> None:
        super().__init__(Codec.H264)
        self.gate = threading.Event()

    def decode(self, data: bytes):  # type: ignore[no-untyped-def]
        self.gate.wait(10)
        return super().decode(data)


def test_far_behind_drops_the_queue_and_waits_for_a_keyframe() -> None:
    units = encoded(20, keyframes=(0, 15))
    dec = GatedDecoder()
    w = DecodeWorker(dec, prepare=None, on_ready=lambda: None, on_broken=lambda fid: None,
                     max_queue=4, max_backlog_s=10.0)  # fmt: skip
    try:
        assert w.submit(DecodeJob(units[0], time.monotonic()))
        wait_for(lambda: w.queue_depth == 0)  # unit 0 is in the (held) decoder
        accepted = [True] + [w.submit(DecodeJob(u, time.monotonic())) for u in units[1:10]]
        # unit 0 is in the decoder; 1..4 wait; the 6th unit finds 4 waiting: all dropped
        # (here the unit limit; the usual limit is the backlog's decode time, tested below)
        assert accepted[:5] == [True] * 5 and accepted[5] is False
        dec.gate.set()
        for u in units[10:]:  # the stream goes on at 60 fps
            w.submit(DecodeJob(u, time.monotonic()))
            time.sleep(1 / 60)
        wait_for(lambda: w.last_decoded is not None and w.queue_depth == 0)
        time.sleep(0.2)
        assert w.errors == 0  # nothing undecodable was fed to the decoder
        assert w.decoded == 1 + 5  # unit 0, then the keyframe 15 and 16..19
        # the rest never reached the decoder: dropped with the queue, or skipped (waiting for
        # the keyframe), each counted once
        assert w.flushed + w.skipped == 20 - 6
        got = w.take()
        assert got is not None and got.job.frame.frame_id == 19
    finally:
        w.close()


def test_a_short_backlog_is_decoded_not_dropped() -> None:
    """A decoder held up for a moment (a busy CPU) catches up: 20 units that decode in a few
    ms each are no reason to drop them and wait for a keyframe."""
    units = encoded(21)
    dec = GatedDecoder()
    w = DecodeWorker(dec, prepare=None, on_ready=lambda: None, on_broken=lambda fid: None)
    try:
        assert all(w.submit(DecodeJob(u, time.monotonic())) for u in units[:1])
        wait_for(lambda: w.queue_depth == 0)
        assert all(w.submit(DecodeJob(u, time.monotonic())) for u in units[1:])  # 20 wait
        dec.gate.set()
        wait_for(lambda: w.decoded == 21)
        assert w.flushed == 0 and w.skipped == 0
        got = w.take()
        assert got is not None and got.job.frame.frame_id == 20
    finally:
        w.close()
