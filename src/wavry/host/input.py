"""Input: a client's keys, pointer and gamepads applied on this machine, and never left held.

Events arrive typed (:mod:`wavry.runtime.messages`); keyboard and mouse go to the injector the
picture source has (XTest, the RemoteDesktop portal, …), gamepads to virtual uinput pads. What
each client holds is tracked per session, and released:

- at once when the session stalls or ends (docs/spec/RIFT.md §4 step 8);
- when nothing authentic arrived from that session for ``QUIET_RELEASE_S`` (0.9 s) while it
  holds something. A client sends input or a ping at least 4 times a second while anything is
  held (and pings twice a second anyway), so a client that is quiet that long is gone for input:
  a client killed mid key-press leaves no key held here for more than a second (0.9 s after its
  last datagram, plus the timer's and the injector's few milliseconds).

Only what that client holds is released; another client's held keys stay down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from wavry.host.link import SessionLink
from wavry.host.notices import InputReleased, Observer
from wavry.host.routing import HostFeature, RoutedEvent, SessionStalled
from wavry.platform.input import InjectionError
from wavry.runtime.injection import InjectorSink
from wavry.runtime.messages import (
    ButtonInput,
    GamepadInput,
    KeyInput,
    PointerMotion,
    PointerMove,
    ScrollInput,
)

__all__ = ["QUIET_RELEASE_S", "Gamepads", "InputFeature"]

#: a session that holds something and is silent this long is gone for input
QUIET_RELEASE_S = 0.9

_DESKTOP_INPUT = (KeyInput, PointerMove, PointerMotion, ButtonInput, ScrollInput)


class Gamepads(Protocol):
    """What the input feature needs of a gamepad back-end (VirtualGamepads)."""

    def apply(
        self,
        pad_id: int,
        axes: Iterable[tuple[int, float]] = (),
        buttons: Iterable[tuple[int, bool]] = (),
    ) -> None: ...

    def release_all(self) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Held:
    keys: set[int] = field(default_factory=set)
    buttons: set[int] = field(default_factory=set)
    pads: bool = False  # touched a gamepad since the last release

    def __bool__(self) -> bool:
        return bool(self.keys or self.buttons or self.pads)


class InputFeature(HostFeature):
    name = "input"
    handles = (
        KeyInput,
        PointerMove,
        PointerMotion,
        ButtonInput,
        ScrollInput,
        GamepadInput,
        SessionStalled,
    )

    def __init__(
        self,
        link: SessionLink,
        notify: Observer,
        say: Callable[[str], None],
        *,
        open_gamepads: Callable[[], Gamepads],
        gamepad_remedy: Callable[[], str] = lambda: "",
    ) -> None:
        self.link = link
        self.notify = notify
        self.say = say
        self.injector: InjectorSink | None = None
        self._open_gamepads = open_gamepads
        self._gamepad_remedy = gamepad_remedy
        self.gamepads: Gamepads | None = None
        self._gamepad_failed = False
        self._gamepad_worked = False
        self.held: dict[int, _Held] = {}

    def attach(self, injector: InjectorSink | None) -> None:
        """The picture source's injector (None: nothing to control, e.g. a test pattern)."""
        if self.injector is not None and self.injector is not injector:
            self.injector.close()
        self.injector = injector

    # ---- events -----------------------------------------------------------------------

    def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
        if isinstance(event, SessionStalled):
            self._release(peer, f"stalled ({event.silence_s:.1f} s silent)")
            return False  # others may want to know too
        if isinstance(event, GamepadInput):
            self._gamepad(peer, event)
            return True
        if not isinstance(event, _DESKTOP_INPUT):
            return False
        if self.injector is None:
            return True  # nothing to control (the source has no desktop)
        held = self.held.setdefault(peer, _Held())
        if isinstance(event, KeyInput):
            (held.keys.add if event.pressed else held.keys.discard)(event.keycode)
        elif isinstance(event, ButtonInput):
            (held.buttons.add if event.pressed else held.buttons.discard)(event.button)
        self.injector.handle(event)
        return True

    def _gamepad(self, peer: int, event: GamepadInput) -> None:
        if self._gamepad_failed:
            return
        try:
            if self.gamepads is None:
                self.gamepads = self._open_gamepads()
            self.gamepads.apply(event.pad, event.axes, event.buttons)
        except InjectionError as exc:
            if self._gamepad_worked:
                self.say(f"  gamepad input failed: {exc}")
            else:  # never worked here (no /dev/uinput): say so once, stop trying
                self._gamepad_failed = True
                self.say(f"  gamepad input ignored: {exc} ({self._gamepad_remedy()})")
            return
        self._gamepad_worked = True
        self.held.setdefault(peer, _Held()).pads = True

    # ---- releasing ----------------------------------------------------------------------

    def _release(self, peer: int, why: str) -> None:
        held = self.held.pop(peer, None)
        if not held:
            return
        others = _Held()
        for h in self.held.values():
            others.keys |= h.keys
            others.buttons |= h.buttons
            others.pads = others.pads or h.pads
        keys = tuple(sorted(held.keys - others.keys))
        buttons = tuple(sorted(held.buttons - others.buttons))
        if self.injector is not None and (keys or buttons):
            self.injector.release(keys, buttons)
        pads = held.pads and not others.pads and self.gamepads is not None
        if pads and self.gamepads is not None:
            try:
                self.gamepads.release_all()
            except InjectionError as exc:
                self.say(f"  gamepad release failed: {exc}")
        if keys or buttons or pads:
            self.notify(InputReleased(peer, why, keys, buttons, pads))

    def next_timer(self) -> float | None:
        due = None
        for peer, held in self.held.items():
            if not held:
                continue
            heard = self.link.last_heard(peer)
            if heard is not None:
                at = heard + QUIET_RELEASE_S
                due = at if due is None else min(due, at)
        return due

    def on_timer(self, now: float) -> None:
        for peer, held in list(self.held.items()):
            heard = self.link.last_heard(peer)
            if held and heard is not None and now - heard >= QUIET_RELEASE_S:
                self._release(peer, f"quiet for {now - heard:.1f} s")

    def on_gone(self, peer: int, reason: str, now: float) -> None:
        self._release(peer, f"session ended ({reason})")
        self.held.pop(peer, None)

    def close(self) -> None:
        for peer in list(self.held):
            self._release(peer, "host shutting down")
        if self.injector is not None:
            self.injector.close()
            self.injector = None
        if self.gamepads is not None:
            self.gamepads.close()
            self.gamepads = None
