"""Video protocol policy on a fake clock: keyframe-request throttling and frame-rate requests
when decoding cannot keep up (wavry.client.video)."""

from __future__ import annotations

from wavry.client.video import DecodeLoad, KeyframeRequests
from wavry.runtime.messages import KeyframeNeeded


def test_keyframe_requests_at_once_then_every_250_ms() -> None:
    k = KeyframeRequests()
    k.decoded(41)
    assert k.lost(10.0) == KeyframeNeeded(41)
    sent = []
    for i in range(1, 60):  # 60 fps of delta frames while we wait
        ok, req = k.frame(False, 10.0 + i / 60)
        assert not ok
        if req:
            sent.append(round(10.0 + i / 60, 3))
    assert len(sent) == 3  # at 10.25, 10.5, 10.75 (not one per frame)
    assert k.frame(True, 11.0) == (True, None) and not k.waiting
    assert k.frame(False, 11.02) == (True, None)


def test_new_session_expects_its_keyframe_without_asking() -> None:
    k = KeyframeRequests()
    k.expect_keyframe()
    assert k.frame(False, 1.0) == (False, None)
    assert k.on_timer(5.0) is None
    assert k.frame(True, 1.1) == (True, None)


def _decodes(
    start: float, seconds: float, fps: float, per_frame: float
) -> list[tuple[float, float]]:
    n = int(seconds * fps)
    return [(start + i / fps, per_frame) for i in range(n)]


def test_slow_decoder_asks_for_a_lower_rate_then_back() -> None:
    load = DecodeLoad(stream_fps=60)
    # 60 fps at 20 ms a frame: 120 % busy -> the highest step at ≤ 70 %: 30 fps (0.6)
    d = _decodes(0.0, 1.0, 60, 0.020)
    assert load.poll(1.0, 0, d) == 30
    assert load.poll(1.5, 0, d) is None  # hold
    # at 30 fps the decoder takes 12 ms: the next step up (45 fps, 54 %) does not fit `low`
    d = _decodes(2.0, 1.0, 30, 0.012)
    assert load.poll(3.0, 0, d) is None
    # decoding gets fast (5 ms): 45 × 5 ms = 22 % < 50 % for 5 s -> step up, then lift
    for t in range(4, 10):
        assert load.poll(float(t), 0, _decodes(t - 1.0, 1.0, 30, 0.005)) in (None, 45)
    assert load.cap == 45
    for t in range(10, 20):
        load.poll(float(t), 0, _decodes(t - 1.0, 1.0, 45, 0.005))
    assert load.cap == 0  # request lifted: the stream's own 60 fps


def test_queue_backlog_alone_steps_down() -> None:
    load = DecodeLoad(stream_fps=60)
    d = _decodes(0.0, 1.0, 60, 0.010)  # 60 % busy, but 3 frames waiting (a CPU spike)
    assert load.poll(1.0, 3, d) == 45
    assert load.poll(1.2, 0, d) is None
