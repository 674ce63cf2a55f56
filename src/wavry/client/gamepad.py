"""Client gamepads: SDL GameController → typed ``GamepadInput`` events (docs/spec/RIFT.md §9;
``wavry.runtime.messages`` turns them into ``GamepadMessage``).

Two layers. :class:`GamepadMapper` is pure (no SDL): it keeps each pad's raw state, applies the
radial stick deadzone and the trigger threshold, and coalesces everything that changed since the
last :meth:`GamepadMapper.flush` into one ``GamepadInput`` per pad. :class:`GamepadManager` is
the SDL glue: it opens controllers on hot-plug, gives each the lowest free ``gamepad_id``
(0..15) and feeds SDL controller events into the mapper.

Window wiring::

    pads = GamepadManager()                      # after SDL_Init; inits GAMECONTROLLER
    for each SDL event:  batch.events += pads.handle_event(event)
    at the end of poll:  batch.events += pads.flush()
    on focus loss/close: batch.events += pads.release_all()
    on window close:     pads.close()
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from wavry.runtime.messages import GamepadInput

__all__ = [
    "AXIS_LT",
    "AXIS_LX",
    "AXIS_LY",
    "AXIS_RT",
    "AXIS_RX",
    "AXIS_RY",
    "BUTTON_COUNT",
    "DEFAULT_STICK_DEADZONE",
    "DEFAULT_TRIGGER_THRESHOLD",
    "MAX_PADS",
    "SDL_AXIS_TO_RIFT",
    "SDL_BUTTON_TO_RIFT",
    "GamepadError",
    "GamepadManager",
    "GamepadMapper",
    "lowest_free_id",
    "make_event",
    "normalize_stick",
    "normalize_trigger",
    "radial_deadzone",
    "trigger_threshold",
]

# docs/spec/RIFT.md §9 axes: sticks in [-1, 1] (positive = right/down), triggers in [0, 1]
AXIS_LX, AXIS_LY, AXIS_RX, AXIS_RY, AXIS_LT, AXIS_RT = 0, 1, 2, 3, 4, 5
AXIS_COUNT = 6
# docs/spec/RIFT.md §9 buttons: 0 A, 1 B, 2 X, 3 Y, 4 LB, 5 RB, 6 back, 7 start, 8 guide, 9 L3, 10
# R3,
# 11 d-pad up, 12 down, 13 left, 14 right
BUTTON_COUNT = 15
MAX_PADS = 16  # gamepad_id 0..15
DEFAULT_STICK_DEADZONE = 0.08
DEFAULT_TRIGGER_THRESHOLD = 0.02

# SDL_GameControllerAxis values (stable SDL2 ABI) → RIFT axis. SDL's Y axes already grow downward.
SDL_AXIS_TO_RIFT = {0: AXIS_LX, 1: AXIS_LY, 2: AXIS_RX, 3: AXIS_RY, 4: AXIS_LT, 5: AXIS_RT}
# SDL_GameControllerButton values → RIFT button
SDL_BUTTON_TO_RIFT = {
    0: 0,  # SDL_CONTROLLER_BUTTON_A
    1: 1,  # B
    2: 2,  # X
    3: 3,  # Y
    4: 6,  # BACK
    5: 8,  # GUIDE
    6: 7,  # START
    7: 9,  # LEFTSTICK
    8: 10,  # RIGHTSTICK
    9: 4,  # LEFTSHOULDER
    10: 5,  # RIGHTSHOULDER
    11: 11,  # DPAD_UP
    12: 12,  # DPAD_DOWN
    13: 13,  # DPAD_LEFT
    14: 14,  # DPAD_RIGHT
}
_STICKS = ((AXIS_LX, AXIS_LY), (AXIS_RX, AXIS_RY))


class GamepadError(RuntimeError):
    """SDL's game controller subsystem could not be initialised."""


# ---------------------------------------------------------------------------- pure mapping


def normalize_stick(raw: int) -> float:
    """SDL stick value (-32768..32767) → [-1, 1]."""
    return max(-1.0, min(1.0, raw / 32767.0))


def normalize_trigger(raw: int) -> float:
    """SDL trigger value (0..32767) → [0, 1]."""
    return max(0.0, min(1.0, raw / 32767.0))


def radial_deadzone(x: float, y: float, deadzone: float) -> tuple[float, float]:
    """Zero a stick inside a circle of radius ``deadzone``; rescale the rest to start at 0.

    The direction is kept (radial, not per-axis, so diagonals are not snapped to an axis) and the
    magnitude is mapped [deadzone, 1] → [0, 1], so small deflections just outside the circle give
    small values rather than a jump.
    """
    mag = math.hypot(x, y)
    if mag <= deadzone or mag == 0.0:
        return 0.0, 0.0
    scaled = (min(mag, 1.0) - deadzone) / (1.0 - deadzone)
    k = scaled / mag
    return max(-1.0, min(1.0, x * k)), max(-1.0, min(1.0, y * k))


def trigger_threshold(value: float, threshold: float) -> float:
    """Zero a trigger below ``threshold``; rescale the rest to [0, 1]."""
    if value <= threshold:
        return 0.0
    return min(1.0, (value - threshold) / (1.0 - threshold))


@dataclass
class _Pad:
    raw: list[float] = field(default_factory=lambda: [0.0] * AXIS_COUNT)  # normalised, pre-dz
    sent_axes: list[float] = field(default_factory=lambda: [0.0] * AXIS_COUNT)
    sent_buttons: list[bool] = field(default_factory=lambda: [False] * BUTTON_COUNT)
    pending_buttons: dict[int, bool] = field(default_factory=dict)
    axes_dirty: bool = False


class GamepadMapper:
    """Raw pad state → coalesced RIFT gamepad messages (no SDL; the manager feeds it).

    ``axis``/``button`` record changes; :meth:`flush` returns one ``InputMessage`` per pad with
    the axes (after deadzone) and buttons whose value differs from what was last sent. A button
    that changes twice before a flush (a tap shorter than one poll) is not lost: the first change
    is closed into its own message and the second starts the next one.
    """

    def __init__(
        self,
        *,
        stick_deadzone: float = DEFAULT_STICK_DEADZONE,
        trigger_threshold: float = DEFAULT_TRIGGER_THRESHOLD,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 <= stick_deadzone < 1.0 or not 0.0 <= trigger_threshold < 1.0:
            raise ValueError("deadzone and trigger threshold must be in [0, 1)")
        self.stick_deadzone = stick_deadzone
        self.trigger_threshold = trigger_threshold
        self._clock = clock
        self._pads: dict[int, _Pad] = {}
        self._ready: list[GamepadInput] = []

    @property
    def pads(self) -> list[int]:
        return sorted(self._pads)

    @property
    def held(self) -> bool:
        """Whether the host holds anything of ours: a button down or an axis off rest."""
        return any(
            any(p.sent_buttons) or any(v != 0.0 for v in p.sent_axes) for p in self._pads.values()
        )

    def add_pad(self, pad_id: int) -> None:
        if not 0 <= pad_id < MAX_PADS:
            raise ValueError(f"gamepad_id must be 0..{MAX_PADS - 1}, got {pad_id}")
        self._pads.setdefault(pad_id, _Pad())

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    def axis(self, pad_id: int, axis: int, value: float) -> None:
        """Record a normalised axis value (sticks [-1, 1], triggers [0, 1]) before deadzone."""
        pad = self._pads.get(pad_id)
        if pad is None or not 0 <= axis < AXIS_COUNT:
            return
        pad.raw[axis] = value
        pad.axes_dirty = True

    def button(self, pad_id: int, button: int, pressed: bool) -> None:
        pad = self._pads.get(pad_id)
        if pad is None or not 0 <= button < BUTTON_COUNT:
            return
        previous = pad.pending_buttons.get(button, pad.sent_buttons[button])
        if previous == pressed:
            return
        if button in pad.pending_buttons:  # second change before a flush: keep the tap
            self._close(pad_id, pad)
        pad.pending_buttons[button] = pressed

    def _processed_axes(self, pad: _Pad) -> list[float]:
        out = [0.0] * AXIS_COUNT
        for ax, ay in _STICKS:
            out[ax], out[ay] = radial_deadzone(pad.raw[ax], pad.raw[ay], self.stick_deadzone)
        for t in (AXIS_LT, AXIS_RT):
            out[t] = trigger_threshold(pad.raw[t], self.trigger_threshold)
        return out

    def _close(self, pad_id: int, pad: _Pad) -> None:
        """Move this pad's pending changes into one ready event (nothing if none changed)."""
        axes: list[tuple[int, float]] = []
        buttons: list[tuple[int, bool]] = []
        if pad.axes_dirty:
            for i, v in enumerate(self._processed_axes(pad)):
                if v != pad.sent_axes[i]:
                    axes.append((i, v))
                    pad.sent_axes[i] = v
            pad.axes_dirty = False
        for b in sorted(pad.pending_buttons):
            pressed = pad.pending_buttons[b]
            if pressed != pad.sent_buttons[b]:
                buttons.append((b, pressed))
                pad.sent_buttons[b] = pressed
        pad.pending_buttons.clear()
        if axes or buttons:
            self._ready.append(GamepadInput(pad_id, tuple(axes), tuple(buttons), self._now_us()))

    def flush(self) -> list[GamepadInput]:
        """Everything that changed since the last flush: at most one message per pad (more only
        when a button toggled twice in between)."""
        for pad_id in sorted(self._pads):
            self._close(pad_id, self._pads[pad_id])
        out, self._ready = self._ready, []
        return out

    def neutral(self, pad_id: int) -> list[GamepadInput]:
        """Pending changes, then a full neutral state for one pad (all six axes at rest, all
        buttons up). Raw state is reset too, so the next real movement is sent again."""
        pad = self._pads.get(pad_id)
        if pad is None:
            return []
        self._close(pad_id, pad)
        out, self._ready = self._ready, []
        axes = tuple((i, 0.0) for i in range(AXIS_COUNT))
        buttons = tuple((b, False) for b in range(BUTTON_COUNT))
        self._pads[pad_id] = _Pad()
        out.append(GamepadInput(pad_id, axes, buttons, self._now_us()))
        return out

    def remove_pad(self, pad_id: int) -> list[GamepadInput]:
        """Neutral state for the pad, then forget it (its id becomes free)."""
        out = self.neutral(pad_id)
        self._pads.pop(pad_id, None)
        return out

    def release_all(self) -> list[GamepadInput]:
        out: list[GamepadInput] = []
        for pad_id in sorted(self._pads):
            out += self.neutral(pad_id)
        return out


# ---------------------------------------------------------------------------- SDL glue


def _sdl() -> Any:
    from wavry.client.sdl import sdl2

    return sdl2


def lowest_free_id(used: Iterable[int], limit: int = MAX_PADS) -> int | None:
    taken = set(used)
    return next((i for i in range(limit) if i not in taken), None)


class GamepadManager:
    """SDL GameController hot-plug and events → RIFT gamepad messages.

    Initialises SDL's GAMECONTROLLER subsystem (SDL then reports controllers already plugged in
    as CONTROLLERDEVICEADDED events, so they go through the same path as hot-plugged ones).
    ``handle_event`` takes every SDL event of a poll (non-controller events are ignored and return
    ``[]``); axis and button changes are held until :meth:`flush`, which the window calls once per
    poll. A removed controller gets a neutral message at once and frees its id.
    """

    def __init__(
        self,
        *,
        stick_deadzone: float = DEFAULT_STICK_DEADZONE,
        trigger_threshold: float = DEFAULT_TRIGGER_THRESHOLD,
        clock: Callable[[], float] = time.time,
        max_pads: int = MAX_PADS,
        init_sdl: bool = True,
    ) -> None:
        sdl2 = _sdl()
        self.mapper = GamepadMapper(
            stick_deadzone=stick_deadzone, trigger_threshold=trigger_threshold, clock=clock
        )
        self.max_pads = max(1, min(MAX_PADS, max_pads))
        self._controllers: dict[int, Any] = {}  # SDL instance id → SDL_GameController*
        self._ids: dict[int, int] = {}  # SDL instance id → gamepad_id
        self.names: dict[int, str] = {}  # gamepad_id → controller name
        self._inited = False
        if init_sdl:
            # Positional buttons on Nintendo-style pads too: RIFT button 0 is always south.
            hint = getattr(sdl2, "SDL_HINT_GAMECONTROLLER_USE_BUTTON_LABELS", None)
            if hint is not None:
                sdl2.SDL_SetHint(hint, b"0")
            if sdl2.SDL_InitSubSystem(sdl2.SDL_INIT_GAMECONTROLLER) != 0:
                err = sdl2.SDL_GetError().decode(errors="replace")
                raise GamepadError(f"cannot initialise SDL game controllers: {err}")
            self._inited = True

    @property
    def pads(self) -> dict[int, str]:
        """gamepad_id → controller name, for every open pad."""
        return dict(sorted(self.names.items()))

    def handle_event(self, event: Any) -> list[GamepadInput]:
        sdl2 = _sdl()
        t = event.type
        if t == sdl2.SDL_CONTROLLERAXISMOTION:
            a = event.caxis
            pad_id = self._ids.get(a.which)
            axis = SDL_AXIS_TO_RIFT.get(a.axis)
            if pad_id is not None and axis is not None:
                norm = normalize_trigger if axis in (AXIS_LT, AXIS_RT) else normalize_stick
                self.mapper.axis(pad_id, axis, norm(a.value))
        elif t in (sdl2.SDL_CONTROLLERBUTTONDOWN, sdl2.SDL_CONTROLLERBUTTONUP):
            b = event.cbutton
            pad_id = self._ids.get(b.which)
            button = SDL_BUTTON_TO_RIFT.get(b.button)
            if pad_id is not None and button is not None:
                self.mapper.button(pad_id, button, t == sdl2.SDL_CONTROLLERBUTTONDOWN)
        elif t == sdl2.SDL_CONTROLLERDEVICEADDED:
            self._open(event.cdevice.which)  # a device index
        elif t == sdl2.SDL_CONTROLLERDEVICEREMOVED:
            return self._remove(event.cdevice.which)  # an instance id
        return []

    def process(self, events: Iterable[Any]) -> list[GamepadInput]:
        """``handle_event`` for each event, then :meth:`flush` — one poll in one call."""
        out: list[GamepadInput] = []
        for e in events:
            out += self.handle_event(e)
        return out + self.flush()

    def flush(self) -> list[GamepadInput]:
        return self.mapper.flush()

    def release_all(self) -> list[GamepadInput]:
        """Neutral axes and every button up for every open pad (focus loss, disconnect)."""
        return self.mapper.release_all()

    def _open(self, device_index: int) -> None:
        sdl2 = _sdl()
        if not sdl2.SDL_IsGameController(device_index):
            return
        instance = int(sdl2.SDL_JoystickGetDeviceInstanceID(device_index))
        if instance in self._ids:
            return  # already open (SDL reports present devices once more after init)
        pad_id = lowest_free_id(self._ids.values(), self.max_pads)
        if pad_id is None:
            return  # every id taken: this controller is not forwarded
        controller = sdl2.SDL_GameControllerOpen(device_index)
        if not controller:
            return
        joystick = sdl2.SDL_GameControllerGetJoystick(controller)
        instance = int(sdl2.SDL_JoystickInstanceID(joystick))
        name = sdl2.SDL_GameControllerName(controller)
        self._controllers[instance] = controller
        self._ids[instance] = pad_id
        self.names[pad_id] = name.decode(errors="replace") if name else f"pad {pad_id}"
        self.mapper.add_pad(pad_id)

    def _remove(self, instance: int) -> list[GamepadInput]:
        pad_id = self._ids.pop(instance, None)
        controller = self._controllers.pop(instance, None)
        if controller is not None:
            _sdl().SDL_GameControllerClose(controller)
        if pad_id is None:
            return []
        self.names.pop(pad_id, None)
        return self.mapper.remove_pad(pad_id)

    def close(self) -> None:
        """Close every controller and the subsystem (send :meth:`release_all` first)."""
        sdl2 = _sdl()
        for controller in self._controllers.values():
            sdl2.SDL_GameControllerClose(controller)
        self._controllers.clear()
        self._ids.clear()
        self.names.clear()
        if self._inited:
            sdl2.SDL_QuitSubSystem(sdl2.SDL_INIT_GAMECONTROLLER)
            self._inited = False


def make_event(event_type: int, **fields: int) -> Any:
    """An SDL_Event for tests and tools: ``make_event(SDL_CONTROLLERAXISMOTION, which=0,
    axis=0, value=1000)`` fills the union member matching the type."""
    sdl2 = _sdl()
    e = sdl2.SDL_Event()
    e.type = event_type
    member = {
        sdl2.SDL_CONTROLLERAXISMOTION: "caxis",
        sdl2.SDL_CONTROLLERBUTTONDOWN: "cbutton",
        sdl2.SDL_CONTROLLERBUTTONUP: "cbutton",
        sdl2.SDL_CONTROLLERDEVICEADDED: "cdevice",
        sdl2.SDL_CONTROLLERDEVICEREMOVED: "cdevice",
    }.get(event_type)
    if member is not None:
        sub = getattr(e, member)
        sub.type = event_type
        for k, v in fields.items():
            setattr(sub, k, v)
        if member == "cbutton" and "state" not in fields:
            pressed = event_type == sdl2.SDL_CONTROLLERBUTTONDOWN
            sub.state = sdl2.SDL_PRESSED if pressed else sdl2.SDL_RELEASED
    return e
