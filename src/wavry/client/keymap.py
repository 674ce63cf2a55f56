"""SDL scancodes (USB HID usage ids) → Linux evdev KEY_* codes (docs/spec/RIFT.md §9 keys are
evdev).

Written out by hand: it is a fixed table between two published code spaces (USB HID usage
tables and linux/input-event-codes.h) and no maintained Python package carries it.
"""

from __future__ import annotations

# fmt: off
_LETTERS = {  # SDL_SCANCODE_A = 4 ... Z = 29
    4: 30, 5: 48, 6: 46, 7: 32, 8: 18, 9: 33, 10: 34, 11: 35, 12: 23, 13: 36, 14: 37, 15: 38,
    16: 50, 17: 49, 18: 24, 19: 25, 20: 16, 21: 19, 22: 31, 23: 20, 24: 22, 25: 47, 26: 17,
    27: 45, 28: 21, 29: 44,
}
_DIGITS = {30: 2, 31: 3, 32: 4, 33: 5, 34: 6, 35: 7, 36: 8, 37: 9, 38: 10, 39: 11}  # 1..9, 0
_MAIN = {
    40: 28,   # RETURN -> KEY_ENTER
    41: 1,    # ESCAPE
    42: 14,   # BACKSPACE
    43: 15,   # TAB
    44: 57,   # SPACE
    45: 12,   # MINUS
    46: 13,   # EQUALS
    47: 26,   # LEFTBRACKET
    48: 27,   # RIGHTBRACKET
    49: 43,   # BACKSLASH
    50: 43,   # NONUSHASH -> KEY_BACKSLASH
    51: 39,   # SEMICOLON
    52: 40,   # APOSTROPHE
    53: 41,   # GRAVE
    54: 51,   # COMMA
    55: 52,   # PERIOD
    56: 53,   # SLASH
    57: 58,   # CAPSLOCK
    # F1..F12
    58: 59, 59: 60, 60: 61, 61: 62, 62: 63, 63: 64, 64: 65, 65: 66, 66: 67, 67: 68,
    68: 87, 69: 88,
    70: 99,   # PRINTSCREEN -> KEY_SYSRQ
    71: 70,   # SCROLLLOCK
    72: 119,  # PAUSE
    73: 110,  # INSERT
    74: 102,  # HOME
    75: 104,  # PAGEUP
    76: 111,  # DELETE
    77: 107,  # END
    78: 109,  # PAGEDOWN
    79: 106,  # RIGHT
    80: 105,  # LEFT
    81: 108,  # DOWN
    82: 103,  # UP
    83: 69,   # NUMLOCKCLEAR
    84: 98,   # KP_DIVIDE
    85: 55,   # KP_MULTIPLY
    86: 74,   # KP_MINUS
    87: 78,   # KP_PLUS
    88: 96,   # KP_ENTER
    89: 79, 90: 80, 91: 81, 92: 75, 93: 76, 94: 77, 95: 71, 96: 72, 97: 73,  # KP_1..KP_9
    98: 82,   # KP_0
    99: 83,   # KP_PERIOD
    100: 86,  # NONUSBACKSLASH -> KEY_102ND
    101: 127, # APPLICATION -> KEY_COMPOSE
    102: 116, # POWER
    103: 117, # KP_EQUALS
    # F13..F24
    104: 183, 105: 184, 106: 185, 107: 186, 108: 187, 109: 188, 110: 189, 111: 190,
    112: 191, 113: 192, 114: 193, 115: 194,
    117: 138, # HELP
    118: 139, # MENU
    120: 128, # STOP
    121: 182, # AGAIN -> KEY_REDO
    122: 131, # UNDO
    123: 137, # CUT
    124: 133, # COPY
    125: 135, # PASTE
    126: 136, # FIND
    127: 113, # MUTE
    128: 115, # VOLUMEUP
    129: 114, # VOLUMEDOWN
    133: 121, # KP_COMMA
    135: 89,  # INTERNATIONAL1 -> KEY_RO
    136: 93,  # INTERNATIONAL2 -> KEY_KATAKANAHIRAGANA
    137: 124, # INTERNATIONAL3 -> KEY_YEN
    138: 92,  # INTERNATIONAL4 -> KEY_HENKAN
    139: 94,  # INTERNATIONAL5 -> KEY_MUHENKAN
    144: 122, # LANG1 -> KEY_HANGEUL
    145: 123, # LANG2 -> KEY_HANJA
    224: 29,  # LCTRL
    225: 42,  # LSHIFT
    226: 56,  # LALT
    227: 125, # LGUI -> KEY_LEFTMETA
    228: 97,  # RCTRL
    229: 54,  # RSHIFT
    230: 100, # RALT
    231: 126, # RGUI -> KEY_RIGHTMETA
    258: 163, # AUDIONEXT -> KEY_NEXTSONG
    259: 165, # AUDIOPREV -> KEY_PREVIOUSSONG
    260: 166, # AUDIOSTOP -> KEY_STOPCD
    261: 164, # AUDIOPLAY -> KEY_PLAYPAUSE
    262: 113, # AUDIOMUTE
    264: 150, # WWW
    265: 155, # MAIL
    266: 140, # CALCULATOR
    267: 157, # COMPUTER
    268: 217, # AC_SEARCH
    269: 172, # AC_HOME
    270: 158, # AC_BACK
    271: 159, # AC_FORWARD
    272: 128, # AC_STOP
    273: 173, # AC_REFRESH
    274: 156, # AC_BOOKMARKS
    281: 142, # SLEEP
}
# fmt: on

SDL_TO_EVDEV: dict[int, int] = {**_LETTERS, **_DIGITS, **_MAIN}


def evdev_from_scancode(scancode: int) -> int | None:
    """The evdev KEY_* code for an SDL scancode, or None when there is none."""
    return SDL_TO_EVDEV.get(scancode)
