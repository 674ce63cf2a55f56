"""Which key presses reach the host (wavry.client.keys.KeyFilter, on a fake clock): a hotkey
chord sends nothing, modifiers included; everything else goes through, in order."""

from __future__ import annotations

from wavry.client.keys import KeyFilter

CTRL, ALT, SHIFT, RSHIFT, S, A, C = 29, 56, 42, 54, 31, 30, 46


def test_hotkey_chord_sends_nothing() -> None:
    k = KeyFilter(hold_s=0.15)
    out = k.press(CTRL, 0.00) + k.press(ALT, 0.05) + k.press(SHIFT, 0.10)
    out += k.tick(0.40)  # all three held: the chord is still open, nothing leaks
    out += k.press(S, 0.45, hotkey=True)
    out += k.release(S, 0.50) + k.release(SHIFT, 0.55) + k.release(ALT, 0.56)
    out += k.release(CTRL, 0.57) + k.tick(1.0)
    assert out == []
    assert not k.anything_held


def test_ctrl_c_goes_through_modifier_first() -> None:
    k = KeyFilter()
    assert k.press(CTRL, 0.0) == []  # deferred until we know
    assert k.press(C, 0.05) == [(CTRL, True), (C, True)]
    assert k.release(C, 0.1) == [(C, False)]
    assert k.release(CTRL, 0.12) == [(CTRL, False)]


def test_lone_modifier_is_held_on_the_host_after_the_hold() -> None:
    k = KeyFilter(hold_s=0.15)
    assert k.press(SHIFT, 0.0) == []
    assert k.tick(0.1) == []
    assert k.tick(0.16) == [(SHIFT, True)]  # a game's sprint key, 150 ms late at most
    assert k.anything_held
    assert k.release(SHIFT, 2.0) == [(SHIFT, False)]


def test_modifier_tap_reaches_the_host() -> None:
    k = KeyFilter()
    assert k.press(RSHIFT, 0.0) == []
    assert k.release(RSHIFT, 0.05) == [(RSHIFT, True), (RSHIFT, False)]


def test_modifier_sent_before_the_chord_is_released_by_the_hotkey() -> None:
    k = KeyFilter(hold_s=0.15)
    k.press(CTRL, 0.0)
    assert k.tick(0.2) == [(CTRL, True)]  # slow chord: Ctrl already on the host
    k.press(ALT, 0.3)
    k.press(SHIFT, 0.35)
    assert k.press(S, 0.4, hotkey=True) == [(CTRL, False)]
    assert k.release(CTRL, 0.5) == [] and k.release(ALT, 0.5) == []
    assert not k.anything_held


def test_pointer_flushes_modifiers_and_release_all() -> None:
    k = KeyFilter()
    k.press(CTRL, 0.0)
    assert k.pointer() == [(CTRL, True)]  # Ctrl+click
    k.press(A, 0.1)
    assert k.release_all() == [(A, False), (CTRL, False)]
    assert k.release(A, 0.2) == [] and not k.anything_held
