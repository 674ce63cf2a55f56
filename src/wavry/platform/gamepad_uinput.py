"""Host gamepads: one virtual Xbox 360-style pad per client ``gamepad_id`` through /dev/uinput.

Each pad looks like what the Linux ``xpad`` driver makes of a wired Xbox 360 controller
(USB 045e:028e, version 0x0110), so SDL, Steam and games pick their stock X360 mapping by GUID:

* sticks ABS_X/ABS_Y (left), ABS_RX/ABS_RY (right), -32768..32767, +Y = down (docs/spec/RIFT.md §9
too);
* triggers ABS_Z (left), ABS_RZ (right), 0..1023;
* d-pad as the hat ABS_HAT0X/ABS_HAT0Y (-1..1), as xpad reports it for 360 pads (SDL's
  database maps ``dpup:h0.1`` etc. for this GUID);
* buttons with xpad's codes: A BTN_A (0x130), B BTN_B (0x131), X BTN_X (0x133), Y BTN_Y (0x134),
  LB BTN_TL, RB BTN_TR, back BTN_SELECT, start BTN_START, guide BTN_MODE, L3 BTN_THUMBL,
  R3 BTN_THUMBR. (The kernel also names 0x133 BTN_NORTH and 0x134 BTN_WEST; xpad nevertheless
  sends the left face button X as 0x133, and SDL's X360 mapping ``x:b2,y:b3`` expects exactly
  that, so we do the same.)

The device-write boundary is :class:`wavry.platform.uinput.UinputDevice`; tests stand a recorder
there. The real /dev/uinput (:class:`~wavry.platform.uinput.FileDevice`) is the default.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from wavry.platform.input import InjectionError
from wavry.platform.probe import ProbeResult
from wavry.platform.uinput import (
    _ABS_SETUP,
    _SETUP,
    EV_ABS,
    EV_KEY,
    EV_SYN,
    SYN_REPORT,
    UI_ABS_SETUP,
    UI_DEV_CREATE,
    UI_DEV_DESTROY,
    UI_DEV_SETUP,
    UI_SET_ABSBIT,
    UI_SET_EVBIT,
    UI_SET_KEYBIT,
    UINPUT_PATH,
    FileDevice,
    UinputDevice,
    input_event,
)

__all__ = [
    "ABS_CODES",
    "BUTTON_CODES",
    "MAX_PADS",
    "PRODUCT_ID",
    "VENDOR_ID",
    "VirtualGamepads",
    "probe",
    "scale_stick",
    "scale_trigger",
]

BUS_USB = 0x03
VENDOR_ID, PRODUCT_ID, VERSION = 0x045E, 0x028E, 0x0110
MAX_PADS = 16

ABS_X, ABS_Y, ABS_Z, ABS_RX, ABS_RY, ABS_RZ = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
ABS_HAT0X, ABS_HAT0Y = 0x10, 0x11
STICK_MIN, STICK_MAX = -32768, 32767
TRIGGER_MAX = 1023

BTN_A, BTN_B, BTN_X, BTN_Y = 0x130, 0x131, 0x133, 0x134
BTN_TL, BTN_TR = 0x136, 0x137
BTN_SELECT, BTN_START, BTN_MODE = 0x13A, 0x13B, 0x13C
BTN_THUMBL, BTN_THUMBR = 0x13D, 0x13E

# docs/spec/RIFT.md §9 axis → evdev ABS code
ABS_CODES = {0: ABS_X, 1: ABS_Y, 2: ABS_RX, 3: ABS_RY, 4: ABS_Z, 5: ABS_RZ}
_TRIGGERS = (4, 5)
# docs/spec/RIFT.md §9 button → evdev key code (11..14, the d-pad, go to the hat instead)
BUTTON_CODES = {
    0: BTN_A,
    1: BTN_B,
    2: BTN_X,
    3: BTN_Y,
    4: BTN_TL,
    5: BTN_TR,
    6: BTN_SELECT,
    7: BTN_START,
    8: BTN_MODE,
    9: BTN_THUMBL,
    10: BTN_THUMBR,
}
DPAD_UP, DPAD_DOWN, DPAD_LEFT, DPAD_RIGHT = 11, 12, 13, 14


def scale_stick(value: float) -> int:
    """[-1, 1] → -32768..32767 (both ends reachable, 0 → 0); NaN → 0."""
    if value != value:  # NaN
        return 0
    v = max(-1.0, min(1.0, value))
    return round(v * -STICK_MIN) if v < 0 else round(v * STICK_MAX)


def scale_trigger(value: float) -> int:
    """[0, 1] → 0..1023; NaN → 0."""
    if value != value:
        return 0
    return round(max(0.0, min(1.0, value)) * TRIGGER_MAX)


def probe(path: str = UINPUT_PATH) -> ProbeResult:
    """Can virtual gamepads be created here? With the exact remedy when not."""
    access = (
        'echo \'KERNEL=="uinput", GROUP="input", MODE="0660", '
        'OPTIONS+="static_node=uinput"\' | sudo tee /etc/udev/rules.d/99-wavry-uinput.rules '
        "&& sudo udevadm control --reload && sudo udevadm trigger && "
        "sudo usermod -aG input $USER (then log in again)"
    )
    if not os.path.exists(path):
        return ProbeResult(
            "gamepad (uinput)",
            False,
            f"{path} does not exist (uinput module not loaded, or a container without it)",
            "sudo modprobe uinput && echo uinput | sudo tee /etc/modules-load.d/uinput.conf; "
            f"then grant access: {access}",
        )
    if not os.access(path, os.W_OK):
        return ProbeResult(
            "gamepad (uinput)", False, f"{path} is not writable by this user", access
        )
    return ProbeResult("gamepad (uinput)", True, f"{path} writable: virtual Xbox 360 pads")


@dataclass
class _Pad:
    device: UinputDevice
    held: set[int] = field(default_factory=set)  # RIFT buttons 0..14 currently down


class VirtualGamepads:
    """Client pads → virtual uinput pads, created on the first message for each ``gamepad_id``.

    ``apply`` writes one batch of events per client message followed by SYN_REPORT; ``release_all``
    puts every pad in its neutral state (session end, client focus loss); ``close`` does that and
    destroys the devices. ``opener`` makes one device-write boundary per pad (default the real
    /dev/uinput). Errors surface as :class:`InjectionError`.
    """

    name = "uinput-gamepad"

    def __init__(
        self,
        opener: Callable[[], UinputDevice] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._opener = opener or FileDevice
        self._clock = clock
        self._pads: dict[int, _Pad] = {}
        self.ignored = 0  # axes/buttons outside docs/spec/RIFT.md §9 (skipped, counted)

    @property
    def pads(self) -> list[int]:
        return sorted(self._pads)

    def _create(self, pad_id: int) -> _Pad:
        dev = self._opener()
        try:
            dev.ioctl(UI_SET_EVBIT, EV_KEY)
            for code in BUTTON_CODES.values():
                dev.ioctl(UI_SET_KEYBIT, code)
            dev.ioctl(UI_SET_EVBIT, EV_ABS)
            for axis, code in sorted(ABS_CODES.items()):
                lo, hi = (0, TRIGGER_MAX) if axis in _TRIGGERS else (STICK_MIN, STICK_MAX)
                dev.ioctl(UI_SET_ABSBIT, code)
                dev.ioctl(UI_ABS_SETUP, _ABS_SETUP.pack(code, 0, lo, hi, 0, 0, 0))
            for code in (ABS_HAT0X, ABS_HAT0Y):
                dev.ioctl(UI_SET_ABSBIT, code)
                dev.ioctl(UI_ABS_SETUP, _ABS_SETUP.pack(code, 0, -1, 1, 0, 0, 0))
            name = f"Wavry virtual pad {pad_id}".encode()
            dev.ioctl(UI_DEV_SETUP, _SETUP.pack(BUS_USB, VENDOR_ID, PRODUCT_ID, VERSION, name, 0))
            dev.ioctl(UI_DEV_CREATE, 0)
        except OSError as exc:
            dev.close()
            raise InjectionError(f"virtual gamepad {pad_id}: uinput setup failed: {exc}") from exc
        pad = _Pad(dev)
        self._pads[pad_id] = pad
        return pad

    def _write(self, pad: _Pad, events: list[tuple[int, int, int]]) -> None:
        now = self._clock()
        data = b"".join(input_event(t, c, v, now) for t, c, v in events)
        try:
            pad.device.write(data + input_event(EV_SYN, SYN_REPORT, 0, now))
        except OSError as exc:
            raise InjectionError(f"virtual gamepad write failed: {exc}") from exc

    @staticmethod
    def _hat(held: set[int]) -> tuple[int, int]:
        x = (DPAD_RIGHT in held) - (DPAD_LEFT in held)
        y = (DPAD_DOWN in held) - (DPAD_UP in held)
        return x, y

    def apply(
        self,
        pad_id: int,
        axes: Iterable[tuple[int, float]] = (),
        buttons: Iterable[tuple[int, bool]] = (),
    ) -> None:
        """Apply one client gamepad message: only the (axis, value) and (button, pressed) pairs
        it carries (docs/spec/RIFT.md §9 numbering)."""
        if not 0 <= pad_id < MAX_PADS:
            raise InjectionError(f"gamepad_id must be 0..{MAX_PADS - 1}, got {pad_id}")
        pad = self._pads.get(pad_id) or self._create(pad_id)
        events: list[tuple[int, int, int]] = []
        for axis, value in axes:
            code = ABS_CODES.get(axis)
            if code is None:
                self.ignored += 1
                continue
            scaled = scale_trigger(value) if axis in _TRIGGERS else scale_stick(value)
            events.append((EV_ABS, code, scaled))
        hat_before = self._hat(pad.held)
        for button, pressed in buttons:
            if not 0 <= button <= DPAD_RIGHT:
                self.ignored += 1
                continue
            if pressed:
                pad.held.add(button)
            else:
                pad.held.discard(button)
            key = BUTTON_CODES.get(button)
            if key is not None:
                events.append((EV_KEY, key, 1 if pressed else 0))
        hat = self._hat(pad.held)
        for code, before, after in zip((ABS_HAT0X, ABS_HAT0Y), hat_before, hat, strict=True):
            if after != before:
                events.append((EV_ABS, code, after))
        if events:
            self._write(pad, events)

    def release_all(self) -> None:
        """Every pad to neutral: all axes and the hat at rest, held buttons up, one SYN each."""
        for pad_id in sorted(self._pads):
            pad = self._pads[pad_id]
            events = [(EV_ABS, code, 0) for _, code in sorted(ABS_CODES.items())]
            events += [(EV_ABS, ABS_HAT0X, 0), (EV_ABS, ABS_HAT0Y, 0)]
            events += [(EV_KEY, BUTTON_CODES[b], 0) for b in sorted(pad.held) if b in BUTTON_CODES]
            pad.held.clear()
            self._write(pad, events)

    def close(self) -> None:
        """Neutral state, then destroy every virtual pad."""
        try:
            with contextlib.suppress(InjectionError):
                self.release_all()
        finally:
            for pad in self._pads.values():
                with contextlib.suppress(OSError):
                    pad.device.ioctl(UI_DEV_DESTROY, 0)
                pad.device.close()
            self._pads.clear()

    def __enter__(self) -> VirtualGamepads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
