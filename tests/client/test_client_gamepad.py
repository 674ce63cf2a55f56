"""Client gamepads: pure mapping, coalescing, and the SDL glue on SDL virtual joysticks."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import pytest

from wavry.client.gamepad import (
    DEFAULT_STICK_DEADZONE,
    SDL_AXIS_TO_RIFT,
    SDL_BUTTON_TO_RIFT,
    GamepadManager,
    GamepadMapper,
    lowest_free_id,
    make_event,
    normalize_stick,
    normalize_trigger,
    radial_deadzone,
    trigger_threshold,
)
from wavry.client.sdl import sdl2
from wavry.runtime.messages import GamepadInput

NOW = 1700000000.5


def content(g: GamepadInput) -> tuple[int, dict[int, float], dict[int, bool]]:
    assert isinstance(g, GamepadInput)
    return (g.pad, {a: round(v, 4) for a, v in g.axes}, dict(g.buttons))


NEUTRAL_AXES = {i: 0.0 for i in range(6)}
ALL_UP = {i: False for i in range(15)}


# ---------------------------------------------------------------------------- pure mapping


def test_sdl_to_rift_numbering() -> None:
    # SDL_GameControllerAxis / SDL_GameControllerButton → docs/spec/RIFT.md §9
    assert SDL_AXIS_TO_RIFT[sdl2.SDL_CONTROLLER_AXIS_LEFTX] == 0
    assert SDL_AXIS_TO_RIFT[sdl2.SDL_CONTROLLER_AXIS_LEFTY] == 1
    assert SDL_AXIS_TO_RIFT[sdl2.SDL_CONTROLLER_AXIS_RIGHTX] == 2
    assert SDL_AXIS_TO_RIFT[sdl2.SDL_CONTROLLER_AXIS_RIGHTY] == 3
    assert SDL_AXIS_TO_RIFT[sdl2.SDL_CONTROLLER_AXIS_TRIGGERLEFT] == 4
    assert SDL_AXIS_TO_RIFT[sdl2.SDL_CONTROLLER_AXIS_TRIGGERRIGHT] == 5
    expected = {
        "A": 0,
        "B": 1,
        "X": 2,
        "Y": 3,
        "LEFTSHOULDER": 4,
        "RIGHTSHOULDER": 5,
        "BACK": 6,
        "START": 7,
        "GUIDE": 8,
        "LEFTSTICK": 9,
        "RIGHTSTICK": 10,
        "DPAD_UP": 11,
        "DPAD_DOWN": 12,
        "DPAD_LEFT": 13,
        "DPAD_RIGHT": 14,
    }
    for name, rift in expected.items():
        assert SDL_BUTTON_TO_RIFT[getattr(sdl2, f"SDL_CONTROLLER_BUTTON_{name}")] == rift
    assert sorted(SDL_BUTTON_TO_RIFT.values()) == list(range(15))


def test_normalise_and_deadzones() -> None:
    assert normalize_stick(32767) == 1.0 and normalize_stick(-32768) == -1.0
    assert normalize_stick(0) == 0.0 and normalize_stick(16384) == pytest.approx(0.5, abs=1e-4)
    assert normalize_trigger(32767) == 1.0 and normalize_trigger(0) == 0.0
    assert normalize_trigger(-5) == 0.0
    dz = 0.1
    assert radial_deadzone(0.05, 0.05, dz) == (0.0, 0.0)  # inside the circle
    assert radial_deadzone(0.09, 0.0, dz) == (0.0, 0.0)
    # radial: a diagonal just outside the circle keeps its direction (not snapped to an axis)
    x, y = radial_deadzone(0.08, 0.08, dz)
    assert x > 0 and x == pytest.approx(y)
    assert radial_deadzone(1.0, 0.0, dz) == (1.0, 0.0)  # full range still reachable
    assert radial_deadzone(0.0, -1.0, dz) == (0.0, -1.0)
    x, _ = radial_deadzone(0.55, 0.0, dz)
    assert x == pytest.approx(0.5)  # [dz, 1] → [0, 1] linearly
    x, y = radial_deadzone(1.0, 1.0, dz)  # corner of a square gate: clamped to the unit circle
    assert x == pytest.approx(2**-0.5) and y == pytest.approx(2**-0.5)
    assert radial_deadzone(0.3, 0.0, 0.0) == (0.3, 0.0)
    assert trigger_threshold(0.01, 0.02) == 0.0
    assert trigger_threshold(1.0, 0.02) == 1.0
    assert trigger_threshold(0.51, 0.02) == pytest.approx(0.5)
    assert DEFAULT_STICK_DEADZONE == 0.08
    assert lowest_free_id([0, 1, 3]) == 2 and lowest_free_id(range(16)) is None
    with pytest.raises(ValueError):
        GamepadMapper(stick_deadzone=1.0)


def test_mapper_coalesces_and_sends_only_changes() -> None:
    m = GamepadMapper(clock=lambda: NOW)
    m.add_pad(0)
    m.add_pad(1)
    assert m.flush() == []
    for v in (0.2, 0.4, 0.6):  # three motion events in one poll → one value
        m.axis(0, 0, v)
    m.axis(0, 4, 1.0)
    m.button(0, 0, True)
    m.axis(1, 3, -1.0)
    out = m.flush()
    assert [o.timestamp_us for o in out] == [int(NOW * 1_000_000)] * 2
    x = (0.6 - 0.08) / 0.92
    assert content(out[0]) == (0, {0: round(x, 4), 4: 1.0}, {0: True})
    assert content(out[1]) == (1, {3: -1.0}, {})
    # the left-Y event inside the deadzone changes nothing that was sent
    m.axis(0, 1, 0.0)
    m.button(0, 0, True)  # already pressed
    assert m.flush() == []
    # moving X only resends X (Y stays 0 after the radial deadzone)
    m.axis(0, 0, 0.0)
    assert [content(o) for o in m.flush()] == [(0, {0: 0.0}, {})]
    # unknown pads, axes and buttons are ignored
    m.axis(7, 0, 1.0)
    m.axis(0, 6, 1.0)
    m.button(0, 15, True)
    assert m.flush() == []


def test_mapper_keeps_taps_shorter_than_a_poll() -> None:
    m = GamepadMapper(clock=lambda: NOW)
    m.add_pad(2)
    m.axis(2, 5, 0.5)
    m.button(2, 1, True)
    m.button(2, 1, False)  # press and release between two polls
    m.button(2, 3, True)
    out = [content(o) for o in m.flush()]
    assert out == [(2, {5: round((0.5 - 0.02) / 0.98, 4)}, {1: True}), (2, {}, {1: False, 3: True})]


def test_mapper_neutral_release_and_remove() -> None:
    m = GamepadMapper(clock=lambda: NOW)
    m.add_pad(0)
    m.add_pad(3)
    m.axis(0, 2, 1.0)
    m.button(0, 11, True)
    m.flush()
    m.axis(3, 0, -1.0)  # pending, not yet flushed: sent before the neutral state
    out = [content(o) for o in m.release_all()]
    assert out == [(0, NEUTRAL_AXES, ALL_UP), (3, {0: -1.0}, {}), (3, NEUTRAL_AXES, ALL_UP)]
    assert m.flush() == []
    # the stick is still held after focus comes back: the next movement is sent again
    m.axis(0, 2, 1.0)
    assert [content(o) for o in m.flush()] == [(0, {2: 1.0}, {})]
    assert [content(o) for o in m.remove_pad(0)] == [(0, NEUTRAL_AXES, ALL_UP)]
    assert m.pads == [3]
    with pytest.raises(ValueError):
        m.add_pad(16)


# ---------------------------------------------------------------------------- SDL glue


class VirtualPads:
    """SDL virtual joysticks typed as game controllers: real SDL hot-plug and controller events."""

    def __init__(self) -> None:
        self.indices: dict[str, int] = {}

    def attach(self, name: str) -> int:
        desc = sdl2.SDL_VirtualJoystickDesc()
        desc.version = sdl2.SDL_VIRTUAL_JOYSTICK_DESC_VERSION
        desc.type = sdl2.SDL_JOYSTICK_TYPE_GAMECONTROLLER
        desc.naxes, desc.nbuttons, desc.nhats = 6, 15, 0
        desc.name = name.encode()
        index = sdl2.SDL_JoystickAttachVirtualEx(ctypes.byref(desc))
        assert index >= 0, sdl2.SDL_GetError()
        return int(index)

    def find(self, name: str) -> int:
        for i in range(sdl2.SDL_NumJoysticks()):
            if sdl2.SDL_JoystickNameForIndex(i) == name.encode():
                return i
        raise LookupError(name)

    def detach(self, name: str) -> None:
        assert sdl2.SDL_JoystickDetachVirtual(self.find(name)) == 0


def poll_all() -> list[Any]:
    events = []
    e = sdl2.SDL_Event()
    while sdl2.SDL_PollEvent(ctypes.byref(e)):
        events.append(e)
        e = sdl2.SDL_Event()
    return events


@pytest.fixture
def manager() -> Iterator[GamepadManager]:
    if not hasattr(sdl2, "SDL_JoystickAttachVirtualEx"):
        pytest.skip("SDL < 2.24: no virtual joysticks")
    mgr = GamepadManager(clock=lambda: NOW)
    poll_all()
    try:
        yield mgr
    finally:
        for i in reversed(range(sdl2.SDL_NumJoysticks())):
            if sdl2.SDL_JoystickIsVirtual(i):
                sdl2.SDL_JoystickDetachVirtual(i)
        mgr.close()


def test_hotplug_assigns_lowest_free_ids(manager: GamepadManager) -> None:
    pads = VirtualPads()
    for n in range(5):
        pads.attach(f"wavry test pad {n}")
    assert manager.process(poll_all()) == []
    assert manager.pads == {n: f"wavry test pad {n}" for n in range(5)}
    # unplug pad 1: a neutral message for it at once, id 1 becomes free
    pads.detach("wavry test pad 1")
    out = manager.process(poll_all())
    assert [content(o) for o in out] == [(1, NEUTRAL_AXES, ALL_UP)]
    assert sorted(manager.pads) == [0, 2, 3, 4]
    pads.attach("wavry test pad 5")
    manager.process(poll_all())
    assert manager.pads[1] == "wavry test pad 5"
    # release_all: every open pad to neutral
    out = manager.release_all()
    assert [content(o) for o in out] == [(i, NEUTRAL_AXES, ALL_UP) for i in range(5)]


def test_real_controller_events_end_to_end(manager: GamepadManager) -> None:
    pads = VirtualPads()
    pads.attach("wavry e2e pad")
    manager.process(poll_all())
    assert manager.pads == {0: "wavry e2e pad"}
    js = sdl2.SDL_JoystickFromInstanceID(next(iter(manager._ids)))
    sdl2.SDL_JoystickSetVirtualAxis(js, 0, 32767)  # left X full right
    sdl2.SDL_JoystickSetVirtualAxis(js, 3, -32768)  # right Y full up
    sdl2.SDL_JoystickSetVirtualAxis(js, 5, 32767)  # right trigger fully pulled
    sdl2.SDL_JoystickSetVirtualButton(js, sdl2.SDL_CONTROLLER_BUTTON_A, 1)
    sdl2.SDL_JoystickSetVirtualButton(js, sdl2.SDL_CONTROLLER_BUTTON_DPAD_LEFT, 1)
    sdl2.SDL_JoystickSetVirtualButton(js, sdl2.SDL_CONTROLLER_BUTTON_LEFTSHOULDER, 1)
    sdl2.SDL_GameControllerUpdate()
    out = manager.process(poll_all())
    assert len(out) == 1  # one poll, one pad → one message
    pad, axes, buttons = content(out[0])
    assert pad == 0 and out[0].timestamp_us == int(NOW * 1_000_000)
    assert axes == {0: 1.0, 3: -1.0, 5: 1.0}
    assert buttons == {0: True, 4: True, 13: True}
    sdl2.SDL_JoystickSetVirtualAxis(js, 0, 0)
    sdl2.SDL_JoystickSetVirtualAxis(js, 1, 1000)  # left Y inside the deadzone: stays 0
    sdl2.SDL_JoystickSetVirtualButton(js, sdl2.SDL_CONTROLLER_BUTTON_A, 0)
    sdl2.SDL_GameControllerUpdate()
    assert [content(o) for o in manager.process(poll_all())] == [(0, {0: 0.0}, {0: False})]


def test_constructed_sdl_events(manager: GamepadManager) -> None:
    VirtualPads().attach("wavry constructed pad")
    manager.process(poll_all())
    inst = next(iter(manager._ids))
    events = [
        make_event(sdl2.SDL_CONTROLLERAXISMOTION, which=inst, axis=2, value=-32768),
        make_event(sdl2.SDL_CONTROLLERAXISMOTION, which=inst, axis=5, value=32767),
        make_event(sdl2.SDL_CONTROLLERBUTTONDOWN, which=inst, button=5),  # GUIDE
        make_event(sdl2.SDL_CONTROLLERBUTTONDOWN, which=inst + 100, button=0),  # unknown pad
        make_event(sdl2.SDL_KEYDOWN),  # not ours
    ]
    assert all(manager.handle_event(e) == [] for e in events)
    assert [content(o) for o in manager.flush()] == [(0, {2: -1.0, 5: 1.0}, {8: True})]
    up = make_event(sdl2.SDL_CONTROLLERBUTTONUP, which=inst, button=5)
    removed = make_event(sdl2.SDL_CONTROLLERDEVICEREMOVED, which=inst)
    out = manager.process([up, removed])
    # the pending release goes out before the neutral state of the removed pad
    assert [content(o) for o in out] == [(0, {}, {8: False}), (0, NEUTRAL_AXES, ALL_UP)]
    assert manager.pads == {}
