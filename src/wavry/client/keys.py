"""Which key presses reach the host: held-key tracking and hotkey chords that send nothing.

The window's hotkeys are Ctrl+Alt+Shift + a letter. The modifiers are pressed first, before the
letter says whether the chord is a hotkey, so a modifier pressed while no other key is held is
*deferred*: it is sent only when the chord turns out not to be a hotkey — another key goes down,
a mouse button or the wheel is used, the modifier is released (then the host gets the tap), or
no further modifier follows within ``hold_s`` (a lone Shift held in a game goes through after
``hold_s``; while all three modifier groups are held the chord is still open and waits). When
the letter completes a hotkey, the deferred modifiers are dropped and their releases swallowed:
the host sees nothing of the chord. A modifier that had already been sent (held longer than
``hold_s`` first) is released on the host at once.

Pure (no SDL): codes are Linux evdev ``KEY_*`` codes (docs/spec/RIFT.md §9), time is a ``now``
argument; :class:`wavry.client.window.VideoWindow` feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HOTKEY_MODIFIERS", "KeyChange", "KeyFilter"]

# evdev codes of the hotkey modifiers, by group (either side of each counts)
_CTRL = frozenset({29, 97})  # KEY_LEFTCTRL, KEY_RIGHTCTRL
_ALT = frozenset({56, 100})  # KEY_LEFTALT, KEY_RIGHTALT
_SHIFT = frozenset({42, 54})  # KEY_LEFTSHIFT, KEY_RIGHTSHIFT
_GROUPS = (_CTRL, _ALT, _SHIFT)
HOTKEY_MODIFIERS = _CTRL | _ALT | _SHIFT
DEFAULT_HOLD_S = 0.15

KeyChange = tuple[int, bool]
"""(evdev code, pressed) to send to the host."""


@dataclass(slots=True)
class KeyFilter:
    hold_s: float = DEFAULT_HOLD_S
    held: list[int] = field(default_factory=list)  # sent to the host as pressed, in order
    _deferred: list[int] = field(default_factory=list)  # modifiers pressed, not yet sent
    _last_deferred_at: float = 0.0
    _swallow: set[int] = field(default_factory=set)  # releases never to send (a hotkey's keys)

    @property
    def anything_held(self) -> bool:
        """Whether the host holds a key of ours (what the keep-alive is for)."""
        return bool(self.held)

    def _chord_open(self) -> bool:
        down = set(self._deferred) | set(self.held)
        return all(down & g for g in _GROUPS)

    def _flush(self) -> list[KeyChange]:
        out = [(c, True) for c in self._deferred]
        self.held += self._deferred
        self._deferred.clear()
        return out

    def press(self, code: int, now: float, *, hotkey: bool = False) -> list[KeyChange]:
        """A key went down; ``hotkey``: it completes a window hotkey (the window acts on it)."""
        if hotkey:
            self._swallow.add(code)
            self._swallow.update(self._deferred)
            self._deferred.clear()
            out: list[KeyChange] = []
            for c in [c for c in self.held if c in HOTKEY_MODIFIERS]:
                self.held.remove(c)  # sent before the chord was known: up now, swallow later
                self._swallow.add(c)
                out.append((c, False))
            return out
        if code in self.held or code in self._deferred:
            return []  # a repeat
        self._swallow.discard(code)
        if code in HOTKEY_MODIFIERS and all(c in HOTKEY_MODIFIERS for c in self.held):
            self._deferred.append(code)
            self._last_deferred_at = now
            return []
        out = self._flush()
        self.held.append(code)
        out.append((code, True))
        return out

    def release(self, code: int, now: float) -> list[KeyChange]:
        """A key went up."""
        if code in self._swallow:
            self._swallow.discard(code)
            return []
        if code in self._deferred:
            out = self._flush()  # the host gets the tap (and the modifiers still down)
            self.held.remove(code)
            return [*out, (code, False)]
        if code in self.held:
            self.held.remove(code)
            return [(code, False)]
        return []  # never sent (pressed before the window had focus, or a hotkey letter)

    def pointer(self) -> list[KeyChange]:
        """A mouse button or wheel event: modifiers held with it (Ctrl+click) go first."""
        return self._flush()

    def tick(self, now: float) -> list[KeyChange]:
        """Deferred modifiers go through once no further modifier followed within ``hold_s``
        (unless all three groups are down: the chord is still open)."""
        due = self._deferred and now - self._last_deferred_at >= self.hold_s
        return self._flush() if due and not self._chord_open() else []

    def release_all(self) -> list[KeyChange]:
        """Up for everything the host holds (focus loss, pointer-lock change, close); deferred
        modifiers were never sent and are forgotten (their releases are swallowed)."""
        out = [(c, False) for c in reversed(self.held)]
        self._swallow.update(self.held)
        self._swallow.update(self._deferred)
        self.held.clear()
        self._deferred.clear()
        return out
