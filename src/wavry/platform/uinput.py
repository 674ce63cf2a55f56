"""Input injection through /dev/uinput: a small writer of ``struct input_event`` records.

Two virtual devices are created: a keyboard (every evdev key code 1..255) and a pointer with
relative axes (motion, wheel, hi-res wheel), absolute axes (0..65535, for ``MouseMove``) and the
five buttons of docs/spec/RIFT.md §9. Everything below :class:`UinputDevice` is plain bytes and
ioctls, so
tests can stand a recorder there; the real device is used whenever /dev/uinput can be opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import time
from collections.abc import Callable
from typing import Protocol

from wavry.platform.input import InjectionError, InputInjector, ScrollAccumulator
from wavry.platform.probe import ProbeResult

__all__ = [
    "UI_DEV_CREATE",
    "UI_DEV_DESTROY",
    "UI_DEV_SETUP",
    "FileDevice",
    "UinputDevice",
    "UinputInjector",
    "input_event",
    "probe",
]

UINPUT_PATH = "/dev/uinput"

EV_SYN, EV_KEY, EV_REL, EV_ABS = 0x00, 0x01, 0x02, 0x03
SYN_REPORT = 0
REL_X, REL_Y, REL_HWHEEL, REL_WHEEL = 0x00, 0x01, 0x06, 0x08
REL_WHEEL_HI_RES, REL_HWHEEL_HI_RES = 0x0B, 0x0C
ABS_X, ABS_Y = 0x00, 0x01
ABS_MAX = 65535
BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_SIDE, BTN_EXTRA = 0x110, 0x111, 0x112, 0x113, 0x114
BUS_VIRTUAL = 0x06
# docs/spec/RIFT.md §9 buttons (1 left, 2 middle, 3 right, 4 back, 5 forward) → evdev
EVDEV_BUTTON = {1: BTN_LEFT, 2: BTN_MIDDLE, 3: BTN_RIGHT, 4: BTN_SIDE, 5: BTN_EXTRA}


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("U") << 8) | nr


_IOC_WRITE = 1
UI_DEV_CREATE = _ioc(0, 1, 0)
UI_DEV_DESTROY = _ioc(0, 2, 0)
_SETUP = struct.Struct("=HHHH80sI")  # struct uinput_setup: input_id, name[80], ff_effects_max
_ABS_SETUP = struct.Struct("=H2xiiiiii")  # struct uinput_abs_setup: code, input_absinfo
UI_DEV_SETUP = _ioc(_IOC_WRITE, 3, _SETUP.size)
UI_ABS_SETUP = _ioc(_IOC_WRITE, 4, _ABS_SETUP.size)
UI_SET_EVBIT = _ioc(_IOC_WRITE, 100, 4)
UI_SET_KEYBIT = _ioc(_IOC_WRITE, 101, 4)
UI_SET_RELBIT = _ioc(_IOC_WRITE, 102, 4)
UI_SET_ABSBIT = _ioc(_IOC_WRITE, 103, 4)

_EVENT = struct.Struct("=qqHHi")  # struct input_event on 64-bit Linux: timeval, type, code, value


def input_event(ev_type: int, code: int, value: int, now: float | None = None) -> bytes:
    t = time.time() if now is None else now
    sec = int(t)
    return _EVENT.pack(sec, int((t - sec) * 1_000_000), ev_type, code, value)


class UinputDevice(Protocol):
    """The device-write boundary: ioctls and writes on an open /dev/uinput descriptor."""

    def ioctl(self, request: int, arg: int | bytes) -> None: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class FileDevice:
    """The real /dev/uinput."""

    def __init__(self, path: str = UINPUT_PATH) -> None:
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise InjectionError(
                f"cannot open {path}: {exc.strerror}; {probe(path).remedy}"
            ) from exc

    def ioctl(self, request: int, arg: int | bytes) -> None:
        fcntl.ioctl(self._fd, request, arg)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def probe(path: str = UINPUT_PATH) -> ProbeResult:
    if not os.path.exists(path):
        return ProbeResult(
            "uinput",
            False,
            f"{path} does not exist (uinput module not loaded, or a container without it)",
            "sudo modprobe uinput (and add 'uinput' to /etc/modules-load.d/)",
        )
    if not os.access(path, os.W_OK):
        return ProbeResult(
            "uinput",
            False,
            f"{path} is not writable by this user",
            'add a udev rule: KERNEL=="uinput", GROUP="input", MODE="0660", '
            "then add the user to the input group",
        )
    return ProbeResult("uinput", True, f"{path} writable")


class UinputInjector(InputInjector):
    """Inject through two uinput devices; ``opener`` makes each device (default /dev/uinput)."""

    name = "uinput"

    def __init__(self, opener: Callable[[], UinputDevice] | None = None) -> None:
        super().__init__()
        make = opener or FileDevice
        self.keyboard = make()
        try:
            self.pointer = make()
        except Exception:
            self.keyboard.close()
            raise
        self._wheel = ScrollAccumulator()
        self._motion_rem = [0.0, 0.0]
        self._closed = False
        try:
            self._setup_keyboard()
            self._setup_pointer()
        except OSError as exc:
            self.keyboard.close()
            self.pointer.close()
            raise InjectionError(f"uinput device setup failed: {exc}") from exc

    def _setup_keyboard(self) -> None:
        dev = self.keyboard
        dev.ioctl(UI_SET_EVBIT, EV_KEY)
        for code in range(1, 256):
            dev.ioctl(UI_SET_KEYBIT, code)
        dev.ioctl(UI_DEV_SETUP, _SETUP.pack(BUS_VIRTUAL, 0x1209, 0x5772, 1, b"Wavry keyboard", 0))
        dev.ioctl(UI_DEV_CREATE, 0)

    def _setup_pointer(self) -> None:
        dev = self.pointer
        dev.ioctl(UI_SET_EVBIT, EV_KEY)
        for btn in EVDEV_BUTTON.values():
            dev.ioctl(UI_SET_KEYBIT, btn)
        dev.ioctl(UI_SET_EVBIT, EV_REL)
        for rel in (REL_X, REL_Y, REL_WHEEL, REL_HWHEEL, REL_WHEEL_HI_RES, REL_HWHEEL_HI_RES):
            dev.ioctl(UI_SET_RELBIT, rel)
        dev.ioctl(UI_SET_EVBIT, EV_ABS)
        for axis in (ABS_X, ABS_Y):
            dev.ioctl(UI_SET_ABSBIT, axis)
            dev.ioctl(UI_ABS_SETUP, _ABS_SETUP.pack(axis, 0, 0, ABS_MAX, 0, 0, 0))
        dev.ioctl(UI_DEV_SETUP, _SETUP.pack(BUS_VIRTUAL, 0x1209, 0x5773, 1, b"Wavry pointer", 0))
        dev.ioctl(UI_DEV_CREATE, 0)

    @staticmethod
    def _emit(dev: UinputDevice, events: list[tuple[int, int, int]]) -> None:
        now = time.time()
        data = b"".join(input_event(t, c, v, now) for t, c, v in events)
        dev.write(data + input_event(EV_SYN, SYN_REPORT, 0, now))

    def _key(self, evdev_code: int, pressed: bool) -> None:
        if not 1 <= evdev_code <= 255:
            raise InjectionError(f"evdev key code {evdev_code} is outside 1..255")
        self._emit(self.keyboard, [(EV_KEY, evdev_code, 1 if pressed else 0)])

    def _button(self, button: int, pressed: bool) -> None:
        self._emit(self.pointer, [(EV_KEY, EVDEV_BUTTON[button], 1 if pressed else 0)])

    def _move_abs(self, x01: float, y01: float) -> None:
        x, y = round(x01 * ABS_MAX), round(y01 * ABS_MAX)
        self._emit(self.pointer, [(EV_ABS, ABS_X, x), (EV_ABS, ABS_Y, y)])

    def _motion(self, dx: float, dy: float) -> None:
        self._motion_rem[0] += dx
        self._motion_rem[1] += dy
        ix, iy = int(self._motion_rem[0]), int(self._motion_rem[1])
        self._motion_rem[0] -= ix
        self._motion_rem[1] -= iy
        events = [(EV_REL, axis, v) for axis, v in ((REL_X, ix), (REL_Y, iy)) if v]
        if events:
            self._emit(self.pointer, events)

    def _scroll(self, dx: float, dy: float) -> None:
        # evdev: REL_WHEEL > 0 scrolls up, REL_HWHEEL > 0 right — the same signs as
        # docs/spec/RIFT.md §9.
        # Hi-res axes carry the exact amount (120 per notch); the classic axes whole notches.
        events = []
        hx, hy = round(dx * 120), round(dy * 120)
        if hy:
            events.append((EV_REL, REL_WHEEL_HI_RES, hy))
        if hx:
            events.append((EV_REL, REL_HWHEEL_HI_RES, hx))
        nx, ny = self._wheel.add(dx, dy)
        if ny:
            events.append((EV_REL, REL_WHEEL, ny))
        if nx:
            events.append((EV_REL, REL_HWHEEL, nx))
        if events:
            self._emit(self.pointer, events)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.release_all()
        finally:
            self._closed = True
            for dev in (self.keyboard, self.pointer):
                with contextlib.suppress(OSError):
                    dev.ioctl(UI_DEV_DESTROY, 0)
                dev.close()
