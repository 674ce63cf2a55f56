"""Linux evdev KEY_* codes (docs/spec/RIFT.md §9) and their X keysyms, for the full keyboard.

The X side maps through keysyms rather than assuming ``keycode = evdev + 8``: that holds on
evdev-driven X servers, but Xvfb and others load their own keymaps. :mod:`wavry.platform.xtest`
looks each keysym up in the server's keymap and binds a spare keycode when it is missing.
"""

from __future__ import annotations

from Xlib import XK

__all__ = ["EVDEV_NAMES", "EVDEV_TO_KEYSYM", "KEYSYM_TO_EVDEV", "evdev_code", "keysym_for"]

# (evdev code, KEY_ name without the prefix, X keysym name or value)
_TABLE: list[tuple[int, str, str | int]] = [
    (1, "ESC", "Escape"),
    *[(2 + i, d, d) for i, d in enumerate("123456789")],
    (11, "0", "0"),
    (12, "MINUS", "minus"),
    (13, "EQUAL", "equal"),
    (14, "BACKSPACE", "BackSpace"),
    (15, "TAB", "Tab"),
    *[(16 + i, c.upper(), c) for i, c in enumerate("qwertyuiop")],
    (26, "LEFTBRACE", "bracketleft"),
    (27, "RIGHTBRACE", "bracketright"),
    (28, "ENTER", "Return"),
    (29, "LEFTCTRL", "Control_L"),
    *[(30 + i, c.upper(), c) for i, c in enumerate("asdfghjkl")],
    (39, "SEMICOLON", "semicolon"),
    (40, "APOSTROPHE", "apostrophe"),
    (41, "GRAVE", "grave"),
    (42, "LEFTSHIFT", "Shift_L"),
    (43, "BACKSLASH", "backslash"),
    *[(44 + i, c.upper(), c) for i, c in enumerate("zxcvbnm")],
    (51, "COMMA", "comma"),
    (52, "DOT", "period"),
    (53, "SLASH", "slash"),
    (54, "RIGHTSHIFT", "Shift_R"),
    (55, "KPASTERISK", "KP_Multiply"),
    (56, "LEFTALT", "Alt_L"),
    (57, "SPACE", "space"),
    (58, "CAPSLOCK", "Caps_Lock"),
    *[(59 + i, f"F{i + 1}", f"F{i + 1}") for i in range(10)],
    (69, "NUMLOCK", "Num_Lock"),
    (70, "SCROLLLOCK", "Scroll_Lock"),
    (71, "KP7", "KP_7"),
    (72, "KP8", "KP_8"),
    (73, "KP9", "KP_9"),
    (74, "KPMINUS", "KP_Subtract"),
    (75, "KP4", "KP_4"),
    (76, "KP5", "KP_5"),
    (77, "KP6", "KP_6"),
    (78, "KPPLUS", "KP_Add"),
    (79, "KP1", "KP_1"),
    (80, "KP2", "KP_2"),
    (81, "KP3", "KP_3"),
    (82, "KP0", "KP_0"),
    (83, "KPDOT", "KP_Decimal"),
    (85, "ZENKAKUHANKAKU", "Zenkaku_Hankaku"),
    (86, "102ND", "less"),
    (87, "F11", "F11"),
    (88, "F12", "F12"),
    (89, "RO", 0x04DB),  # kana_RO
    (90, "KATAKANA", "Katakana"),
    (91, "HIRAGANA", "Hiragana"),
    (92, "HENKAN", "Henkan_Mode"),
    (93, "KATAKANAHIRAGANA", "Hiragana_Katakana"),
    (94, "MUHENKAN", "Muhenkan"),
    (95, "KPJPCOMMA", "KP_Separator"),
    (96, "KPENTER", "KP_Enter"),
    (97, "RIGHTCTRL", "Control_R"),
    (98, "KPSLASH", "KP_Divide"),
    (99, "SYSRQ", "Print"),
    (100, "RIGHTALT", "Alt_R"),
    (101, "LINEFEED", "Linefeed"),
    (102, "HOME", "Home"),
    (103, "UP", "Up"),
    (104, "PAGEUP", "Prior"),
    (105, "LEFT", "Left"),
    (106, "RIGHT", "Right"),
    (107, "END", "End"),
    (108, "DOWN", "Down"),
    (109, "PAGEDOWN", "Next"),
    (110, "INSERT", "Insert"),
    (111, "DELETE", "Delete"),
    (113, "MUTE", 0x1008FF12),  # XF86AudioMute
    (114, "VOLUMEDOWN", 0x1008FF11),  # XF86AudioLowerVolume
    (115, "VOLUMEUP", 0x1008FF13),  # XF86AudioRaiseVolume
    (116, "POWER", 0x1008FF2A),  # XF86PowerOff
    (117, "KPEQUAL", "KP_Equal"),
    (118, "KPPLUSMINUS", "plusminus"),
    (119, "PAUSE", "Pause"),
    (121, "KPCOMMA", "KP_Separator"),
    (122, "HANGEUL", 0xFF31),  # Hangul
    (123, "HANJA", 0xFF34),  # Hangul_Hanja
    (124, "YEN", "yen"),
    (125, "LEFTMETA", "Super_L"),
    (126, "RIGHTMETA", "Super_R"),
    (127, "COMPOSE", "Menu"),
    (128, "STOP", "Cancel"),
    (129, "AGAIN", "Redo"),
    (131, "UNDO", "Undo"),
    (136, "FIND", "Find"),
    (138, "HELP", "Help"),
    (142, "SLEEP", 0x1008FF2F),  # XF86Sleep
    (158, "BACK", 0x1008FF26),  # XF86Back
    (159, "FORWARD", 0x1008FF27),  # XF86Forward
    (163, "NEXTSONG", 0x1008FF17),  # XF86AudioNext
    (164, "PLAYPAUSE", 0x1008FF14),  # XF86AudioPlay
    (165, "PREVIOUSSONG", 0x1008FF16),  # XF86AudioPrev
    (166, "STOPCD", 0x1008FF15),  # XF86AudioStop
    (172, "HOMEPAGE", 0x1008FF18),  # XF86HomePage
    (173, "REFRESH", 0x1008FF73),  # XF86Reload
    *[(183 + i, f"F{13 + i}", f"F{13 + i}") for i in range(12)],
]


def _keysym(value: str | int) -> int:
    if isinstance(value, int):
        return value
    sym = int(XK.string_to_keysym(value))
    if sym == 0:
        raise ValueError(f"unknown X keysym name {value!r}")
    return sym


EVDEV_NAMES: dict[int, str] = {code: f"KEY_{name}" for code, name, _ in _TABLE}
EVDEV_TO_KEYSYM: dict[int, int] = {code: _keysym(sym) for code, _, sym in _TABLE}
KEYSYM_TO_EVDEV: dict[int, int] = {}
for _code, _sym in sorted(EVDEV_TO_KEYSYM.items(), reverse=True):
    KEYSYM_TO_EVDEV[_sym] = _code  # lowest evdev code wins (KPJPCOMMA/KPCOMMA share one)
_BY_NAME = {name: code for code, name in EVDEV_NAMES.items()}


def evdev_code(name: str) -> int:
    """``"KEY_A"`` or ``"A"`` → 30."""
    key = name.upper()
    if not key.startswith("KEY_"):
        key = "KEY_" + key
    try:
        return _BY_NAME[key]
    except KeyError:
        raise KeyError(f"unknown evdev key {name!r}") from None


def keysym_for(evdev: int) -> int | None:
    """The X keysym for an evdev code, or None when the table has none."""
    return EVDEV_TO_KEYSYM.get(evdev)
