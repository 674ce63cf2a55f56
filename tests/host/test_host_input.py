"""Keys never stuck (issue 15 item 6): what a client holds is released when it goes quiet for
1 s, stalls or leaves — only its own, on a fake clock, at the injector's interface."""

from __future__ import annotations

from wavry.host.input import QUIET_RELEASE_S, InputFeature
from wavry.host.notices import HostNotice, InputReleased
from wavry.host.routing import HostRouter, SessionStalled
from wavry.platform.input import InputInjector
from wavry.runtime.features import PeerInfo
from wavry.runtime.injection import InjectorSink
from wavry.runtime.messages import ButtonInput, GamepadInput, KeyInput, PointerMove


class FakeLink:
    """The one thing the input feature asks of the sessions: when each was last heard."""

    def __init__(self) -> None:
        self.heard: dict[int, float] = {}

    def last_heard(self, peer: int) -> float | None:
        return self.heard.get(peer)


class RecordingInjector(InputInjector):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, object, bool]] = []

    def _key(self, evdev_code: int, pressed: bool) -> None:
        self.calls.append(("key", evdev_code, pressed))

    def _button(self, button: int, pressed: bool) -> None:
        self.calls.append(("button", button, pressed))

    def _move_abs(self, x01: float, y01: float) -> None:
        self.calls.append(("move", (x01, y01), True))

    def _motion(self, dx: float, dy: float) -> None:
        pass

    def _scroll(self, dx: float, dy: float) -> None:
        pass


class RecordingPads:
    def __init__(self) -> None:
        self.applied: list[tuple[int, object, object]] = []
        self.released = 0

    def apply(self, pad_id: int, axes: object = (), buttons: object = ()) -> None:
        self.applied.append((pad_id, axes, buttons))

    def release_all(self) -> None:
        self.released += 1

    def close(self) -> None:
        pass


def rig() -> tuple[InputFeature, FakeLink, RecordingInjector, RecordingPads, list[HostNotice]]:
    link = FakeLink()
    notices: list[HostNotice] = []
    pads = RecordingPads()
    feature = InputFeature(
        link,  # type: ignore[arg-type]
        notices.append,
        lambda _t: None,
        open_gamepads=lambda: pads,
    )
    inj = RecordingInjector()
    feature.attach(InjectorSink(inj))
    return feature, link, inj, pads, notices


def released(inj: RecordingInjector) -> list[tuple[str, object, bool]]:
    return [c for c in inj.calls if not c[2]]


def test_a_quiet_client_has_its_keys_released_within_one_second() -> None:
    assert QUIET_RELEASE_S <= 0.9  # room for the timer and the injector within 1 s
    f, link, inj, _, notices = rig()
    link.heard[7] = 100.0
    f.on_event(7, KeyInput(30, True), 100.0)
    f.on_event(7, ButtonInput(1, True), 100.0)
    assert f.next_timer() == 100.0 + QUIET_RELEASE_S
    f.on_timer(100.0 + QUIET_RELEASE_S - 0.01)  # not yet
    assert released(inj) == []
    f.on_timer(100.0 + QUIET_RELEASE_S)
    assert released(inj) == [("key", 30, False), ("button", 1, False)]
    assert notices == [InputReleased(7, "quiet for 0.9 s", (30,), (1,), False)]
    assert f.next_timer() is None  # nothing held: no timer


def test_traffic_keeps_a_held_key_down() -> None:
    f, link, inj, _, _ = rig()
    link.heard[7] = 0.0
    f.on_event(7, KeyInput(30, True), 0.0)
    for t in (0.25, 0.5, 0.75, 1.0, 1.25):  # keep-alives at 4 Hz (pings alone: 2 Hz)
        link.heard[7] = t
        f.on_timer(t)
    assert released(inj) == []
    assert f.next_timer() == 1.25 + QUIET_RELEASE_S


def test_only_the_quiet_clients_keys_are_released() -> None:
    f, link, inj, _, _ = rig()
    link.heard.update({1: 0.0, 2: 0.0})
    f.on_event(1, KeyInput(30, True), 0.0)  # a, by client 1
    f.on_event(1, KeyInput(42, True), 0.0)  # shift, by client 1
    f.on_event(2, KeyInput(42, True), 0.0)  # shift, by client 2 too
    link.heard[2] = 1.5
    f.on_timer(1.5)
    assert released(inj) == [("key", 30, False)]  # client 2 still holds shift
    link.heard[2] = 1.5
    f.on_gone(2, "user", 1.6)
    assert released(inj) == [("key", 30, False), ("key", 42, False)]


def test_stall_and_end_release_at_once() -> None:
    f, link, inj, _, notices = rig()
    link.heard[3] = 0.0
    f.on_event(3, KeyInput(30, True), 0.0)
    HostRouter([f]).dispatch(3, SessionStalled(0.4), 0.4)
    assert released(inj) == [("key", 30, False)]
    assert isinstance(notices[-1], InputReleased) and "stalled" in notices[-1].why
    f.on_event(3, KeyInput(31, True), 0.5)
    f.on_gone(3, "timeout", 0.6)
    assert released(inj)[-1] == ("key", 31, False)


def test_released_keys_are_not_released_again() -> None:
    f, link, inj, _, notices = rig()
    link.heard[1] = 0.0
    f.on_event(1, KeyInput(30, True), 0.0)
    f.on_event(1, KeyInput(30, False), 0.1)
    f.on_event(1, PointerMove(0.5, 0.5), 0.1)
    f.on_timer(5.0)
    f.on_gone(1, "user", 5.0)
    assert released(inj) == [("key", 30, False)]  # the client's own release only
    assert notices == []


def test_gamepads_go_neutral_when_their_client_goes_quiet() -> None:
    f, link, _, pads, notices = rig()
    link.heard[1] = 0.0
    f.on_event(1, GamepadInput(0, ((0, 1.0),), ((0, True),)), 0.0)
    assert pads.applied == [(0, ((0, 1.0),), ((0, True),))]
    f.on_timer(1.0)
    assert pads.released == 1
    assert notices == [InputReleased(1, "quiet for 1.0 s", (), (), True)]  # a late timer


def test_input_without_an_injector_is_consumed_and_holds_nothing() -> None:
    f, link, _, _, _ = rig()
    f.attach(None)
    link.heard[1] = 0.0
    assert f.on_event(1, KeyInput(30, True), 0.0)
    assert f.next_timer() is None


def test_keys_go_to_input_only() -> None:
    """The router hands a key press to the input feature alone (files never see it)."""
    from wavry.host.files import FilesFeature
    from wavry.host.routing import HostFeature, RoutedEvent

    f, link, inj, _, _ = rig()
    seen: list[object] = []

    class Spy(HostFeature):
        handles = FilesFeature.handles  # what the files feature asks for

        def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
            seen.append(event)
            return True

    link.heard[1] = 0.0
    router = HostRouter([Spy(), f])
    router.accepted(PeerInfo(1, "id"), 0.0)
    router.dispatch(1, KeyInput(30, True), 0.0)
    assert seen == [] and inj.calls == [("key", 30, True)]
