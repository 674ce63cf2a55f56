"""evdev ↔ X keysym tables (docs/spec/RIFT.md §9)."""

from __future__ import annotations

import pytest
from Xlib import XK

from wavry.platform.input import ScrollAccumulator
from wavry.platform.keymap import (
    EVDEV_NAMES,
    EVDEV_TO_KEYSYM,
    KEYSYM_TO_EVDEV,
    evdev_code,
    keysym_for,
)


def test_well_known_codes() -> None:
    # Values from <linux/input-event-codes.h>
    expected = {
        "ESC": 1,
        "1": 2,
        "0": 11,
        "Q": 16,
        "ENTER": 28,
        "A": 30,
        "LEFTSHIFT": 42,
        "Z": 44,
        "SPACE": 57,
        "F1": 59,
        "F10": 68,
        "F11": 87,
        "F12": 88,
        "KPENTER": 96,
        "RIGHTCTRL": 97,
        "RIGHTALT": 100,
        "HOME": 102,
        "UP": 103,
        "LEFT": 105,
        "DOWN": 108,
        "DELETE": 111,
        "LEFTMETA": 125,
        "COMPOSE": 127,
        "F13": 183,
        "F24": 194,
    }
    for name, code in expected.items():
        assert evdev_code(name) == code, name
        assert EVDEV_NAMES[code] == f"KEY_{name}"
    assert evdev_code("key_a") == 30
    with pytest.raises(KeyError):
        evdev_code("KEY_NOPE")


def test_keysyms_cover_the_keyboard() -> None:
    assert len(EVDEV_TO_KEYSYM) >= 140
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789":
        assert keysym_for(evdev_code(ch)) == XK.string_to_keysym(ch)
    assert keysym_for(evdev_code("ENTER")) == XK.string_to_keysym("Return")
    assert keysym_for(evdev_code("PAGEUP")) == XK.string_to_keysym("Prior")
    assert keysym_for(evdev_code("MUTE")) == 0x1008FF12
    assert keysym_for(999) is None
    for sym, code in KEYSYM_TO_EVDEV.items():
        assert EVDEV_TO_KEYSYM[code] == sym


def test_scroll_accumulator_keeps_fractions() -> None:
    acc = ScrollAccumulator()
    assert acc.add(0.4, 0.4) == (0, 0)
    assert acc.add(0.4, 0.7) == (0, 1)
    assert acc.add(0.3, -0.1) == (1, 0)
    assert acc.add(0, -2.5) == (0, -2)
