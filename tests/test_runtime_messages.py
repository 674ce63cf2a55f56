"""The typed application events round-trip through RIFT messages; the router's contract."""

from __future__ import annotations

import pytest

from wavry.rift import rift_pb2
from wavry.runtime import messages as m
from wavry.runtime.features import Feature, PeerInfo, Router

EVENTS: list[m.AppEvent] = [
    m.KeyInput(30, True, 5),
    m.PointerMove(0.25, 0.75, 6),
    m.PointerMotion(-3, 4, 7),
    m.ButtonInput(3, False, 8),
    m.ScrollInput(0.5, -1.0, 9),
    m.GamepadInput(2, ((0, 0.5), (5, 1.0)), ((0, True), (11, False)), 10),
    m.AudioData(123, b"opus"),
    m.ClipboardText("héllo"),
    m.MonitorsOffered((m.Monitor(0, "HDMI-1", 1920, 1080), m.Monitor(1, "DP-2", 800, 600))),
    m.MonitorSelected(1),
    m.LatencyReport(7, 1, 2, 3, 4, 5, 15),
    m.KeyframeNeeded(41),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip_through_the_wire(event: m.AppEvent) -> None:
    wire = m.encode(event).SerializeToString()
    back = rift_pb2.Message()
    back.ParseFromString(wire)
    assert m.decode(back) == event


def test_transport_messages_are_not_application_events() -> None:
    ping = rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=1)))
    video = rift_pb2.Message(media=rift_pb2.MediaMessage(video=rift_pb2.VideoChunk(frame_id=1)))
    assert m.decode(ping) is None
    assert m.decode(video) is None
    assert m.decode(rift_pb2.Message()) is None


def test_file_traffic_passes_through_untouched() -> None:
    hdr = rift_pb2.Message(
        control=rift_pb2.ControlMessage(file_header=rift_pb2.FileHeader(file_id=3))
    )
    ev = m.decode(hdr)
    assert isinstance(ev, m.FileMessage)
    assert m.encode(ev) is hdr


class _Rec(Feature):
    def __init__(self, name: str, handles: tuple[type, ...], consume: bool = False) -> None:
        self.name = name
        self.handles = handles
        self.consume = consume
        self.seen: list[object] = []
        self.due: float | None = None

    def on_event(self, peer: int, event: m.AppEvent, now: float) -> bool:
        self.seen.append(event)
        if isinstance(event, m.ClipboardText) and event.text == "boom":
            raise RuntimeError("boom")
        return self.consume

    def next_timer(self) -> float | None:
        return self.due

    def on_timer(self, now: float) -> None:
        self.seen.append(("timer", now))
        self.due = None


def test_router_routes_by_type_in_order_and_survives_a_failing_feature() -> None:
    first = _Rec("first", (m.ClipboardText,))
    keys = _Rec("keys", (m.KeyInput,), consume=True)
    after = _Rec("after", (m.KeyInput, m.ClipboardText))
    router = Router([first, keys, after])
    assert router.dispatch(0, m.KeyInput(1, True), 0.0) is True
    assert after.seen == []  # consumed by `keys`
    router.dispatch(0, m.ClipboardText("boom"), 0.0)  # `first` raises; `after` still gets it
    assert after.seen == [m.ClipboardText("boom")]
    first.due, after.due = 2.0, 5.0
    assert router.next_timer() == 2.0
    router.timers(3.0)
    assert first.seen[-1] == ("timer", 3.0) and after.due == 5.0
    router.accepted(PeerInfo(1, "id"), 0.0)
    router.gone(1, "closed", 0.0)
    router.close()


class _Ticker(Feature):
    """A feature with a periodic timer (every 0.1 s), the way the runtime's features do it."""

    name = "ticker"

    def __init__(self) -> None:
        self.due = 0.0
        self.ticks = 0

    def next_timer(self) -> float | None:
        return self.due

    def on_timer(self, now: float) -> None:
        self.due = now + 0.1
        self.ticks += 1


class _BrokenTimer(Feature):
    """A feature whose on_timer fails before its deadline moves on."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def next_timer(self) -> float | None:
        return 0.0

    def on_timer(self, now: float) -> None:
        self.calls += 1
        raise RuntimeError("send failed")


def test_a_feature_whose_timer_raises_does_not_keep_the_runtime_awake() -> None:
    """Driven like the runtime's timer loop (sleep until the router's next deadline, then
    `timers`): a deadline left in the past by a failing feature woke the loop at once, over
    and over, for as long as the fault lasted (10 000 wake-ups here without moving time on)."""
    ticker, broken = _Ticker(), _BrokenTimer()
    router = Router([broken, ticker])
    now, wakeups = 0.0, 0
    while now < 5.0 and wakeups < 10_000:
        due = router.next_timer()
        assert due is not None
        now = max(now, due)
        router.timers(now)
        wakeups += 1
    assert now >= 5.0, f"{wakeups} wake-ups and the clock is still at {now}"
    assert broken.calls <= 6  # retried once a second
    assert ticker.ticks >= 49  # the healthy feature kept its 10 Hz
    assert wakeups <= ticker.ticks + broken.calls
