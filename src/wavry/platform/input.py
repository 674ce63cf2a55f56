"""Input injection interface (docs/spec/RIFT.md §9) and the held-state bookkeeping every backend
shares."""

from __future__ import annotations

import abc
import math

from wavry.platform.probe import ProbeResult

__all__ = [
    "BUTTON_BACK",
    "BUTTON_FORWARD",
    "BUTTON_LEFT",
    "BUTTON_MIDDLE",
    "BUTTON_RIGHT",
    "InjectionError",
    "InputInjector",
    "ProbeResult",
    "ScrollAccumulator",
]

# docs/spec/RIFT.md §9 MouseButton.button
BUTTON_LEFT, BUTTON_MIDDLE, BUTTON_RIGHT, BUTTON_BACK, BUTTON_FORWARD = 1, 2, 3, 4, 5


class InjectionError(RuntimeError):
    """The backend could not be opened or rejected an event."""


class ScrollAccumulator:
    """Turns fractional wheel notches into whole detents, keeping the remainder per axis."""

    def __init__(self) -> None:
        self._dx = 0.0
        self._dy = 0.0

    def add(self, dx: float, dy: float) -> tuple[int, int]:
        self._dx += dx
        self._dy += dy
        nx = math.trunc(self._dx)
        ny = math.trunc(self._dy)
        self._dx -= nx
        self._dy -= ny
        return nx, ny


class InputInjector(abc.ABC):
    """Injects the events of docs/spec/RIFT.md §9 into the host.

    Keys are Linux evdev ``KEY_*`` codes; buttons 1 left, 2 middle, 3 right, 4 back, 5 forward;
    ``mouse_move_abs`` takes x, y in [0, 1] over the streamed area; ``scroll`` takes notches with
    positive dy = up/away and positive dx = right. Every key and button pressed through the
    injector is tracked and ``release_all()`` releases them (session end, focus loss).
    """

    name = "input"

    def __init__(self) -> None:
        self.held_keys: set[int] = set()
        self.held_buttons: set[int] = set()

    def key(self, evdev_code: int, pressed: bool) -> None:
        if not pressed and evdev_code not in self.held_keys:
            return  # never release what we did not press (the user's own keyboard)
        self._key(evdev_code, pressed)
        if pressed:
            self.held_keys.add(evdev_code)
        else:
            self.held_keys.discard(evdev_code)

    def button(self, button: int, pressed: bool) -> None:
        if button not in (1, 2, 3, 4, 5):
            raise InjectionError(f"mouse button must be 1..5 (docs/spec/RIFT.md §9), got {button}")
        if not pressed and button not in self.held_buttons:
            return
        self._button(button, pressed)
        if pressed:
            self.held_buttons.add(button)
        else:
            self.held_buttons.discard(button)

    def mouse_move_abs(self, x01: float, y01: float) -> None:
        self._move_abs(min(1.0, max(0.0, x01)), min(1.0, max(0.0, y01)))

    def mouse_motion(self, dx: float, dy: float) -> None:
        self._motion(dx, dy)

    def scroll(self, dx: float, dy: float) -> None:
        self._scroll(dx, dy)

    def release_all(self) -> None:
        """Release every key and button this injector holds."""
        for code in sorted(self.held_keys):
            self._key(code, False)
        self.held_keys.clear()
        for b in sorted(self.held_buttons):
            self._button(b, False)
        self.held_buttons.clear()
        self.flush()

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Push buffered events out (backends that batch)."""

    def close(self) -> None:
        self.release_all()

    def __enter__(self) -> InputInjector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def _key(self, evdev_code: int, pressed: bool) -> None: ...

    @abc.abstractmethod
    def _button(self, button: int, pressed: bool) -> None: ...

    @abc.abstractmethod
    def _move_abs(self, x01: float, y01: float) -> None: ...

    @abc.abstractmethod
    def _motion(self, dx: float, dy: float) -> None: ...

    @abc.abstractmethod
    def _scroll(self, dx: float, dy: float) -> None: ...
