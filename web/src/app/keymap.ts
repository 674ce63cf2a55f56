/**
 * KeyboardEvent.code (UI Events KeyboardEvent code values) → Linux evdev KEY_* codes
 * (RIFT.md §9). A fixed table between two published code spaces (W3C "UI Events
 * KeyboardEvent code Values" and linux/input-event-codes.h); no npm package carries it.
 * `code` names the physical key whatever the layout, which is what the host's evdev wants.
 */

const LETTERS: Record<string, number> = {
  A: 30, B: 48, C: 46, D: 32, E: 18, F: 33, G: 34, H: 35, I: 23, J: 36, K: 37, L: 38, M: 50,
  N: 49, O: 24, P: 25, Q: 16, R: 19, S: 31, T: 20, U: 22, V: 47, W: 17, X: 45, Y: 21, Z: 44,
};

export const KEYMAP: Record<string, number> = {
  Escape: 1,
  Digit1: 2, Digit2: 3, Digit3: 4, Digit4: 5, Digit5: 6, Digit6: 7, Digit7: 8, Digit8: 9,
  Digit9: 10, Digit0: 11,
  Minus: 12, Equal: 13, Backspace: 14, Tab: 15,
  BracketLeft: 26, BracketRight: 27, Enter: 28, ControlLeft: 29,
  Semicolon: 39, Quote: 40, Backquote: 41, ShiftLeft: 42, Backslash: 43,
  Comma: 51, Period: 52, Slash: 53, ShiftRight: 54, NumpadMultiply: 55, AltLeft: 56,
  Space: 57, CapsLock: 58,
  F1: 59, F2: 60, F3: 61, F4: 62, F5: 63, F6: 64, F7: 65, F8: 66, F9: 67, F10: 68,
  NumLock: 69, ScrollLock: 70,
  Numpad7: 71, Numpad8: 72, Numpad9: 73, NumpadSubtract: 74, Numpad4: 75, Numpad5: 76,
  Numpad6: 77, NumpadAdd: 78, Numpad1: 79, Numpad2: 80, Numpad3: 81, Numpad0: 82,
  NumpadDecimal: 83, IntlBackslash: 86, F11: 87, F12: 88, IntlRo: 89,
  NumpadEnter: 96, ControlRight: 97, NumpadDivide: 98, PrintScreen: 99, AltRight: 100,
  Home: 102, ArrowUp: 103, PageUp: 104, ArrowLeft: 105, ArrowRight: 106, End: 107,
  ArrowDown: 108, PageDown: 109, Insert: 110, Delete: 111,
  AudioVolumeMute: 113, AudioVolumeDown: 114, AudioVolumeUp: 115, Power: 116,
  NumpadEqual: 117, Pause: 119, NumpadComma: 121, Lang1: 122, Lang2: 123, IntlYen: 124,
  MetaLeft: 125, MetaRight: 126, OSLeft: 125, OSRight: 126, ContextMenu: 127,
  BrowserStop: 128, Again: 129, Props: 130, Undo: 131, Copy: 133, Open: 134, Paste: 135,
  Find: 136, Cut: 137, Help: 138, Sleep: 142, WakeUp: 143, LaunchApp1: 148, LaunchApp2: 149,
  LaunchMail: 155, BrowserFavorites: 156, BrowserBack: 158, BrowserForward: 159, Eject: 161,
  MediaTrackNext: 163, MediaPlayPause: 164, MediaTrackPrevious: 165, MediaStop: 166,
  BrowserHome: 172, BrowserRefresh: 173,
  F13: 183, F14: 184, F15: 185, F16: 186, F17: 187, F18: 188, F19: 189, F20: 190,
  F21: 191, F22: 192, F23: 193, F24: 194, BrowserSearch: 217, MediaSelect: 226,
};
for (const [letter, code] of Object.entries(LETTERS)) KEYMAP[`Key${letter}`] = code;

/** The evdev code for a KeyboardEvent.code, or undefined for keys with no evdev equivalent. */
export function evdevFor(code: string): number | undefined {
  return KEYMAP[code];
}
