"""uinput injector against a recorder at the device-write boundary (no /dev/uinput here)."""

from __future__ import annotations

import os
import struct

import pytest

from wavry.platform import uinput
from wavry.platform.input import InjectionError
from wavry.platform.keymap import evdev_code
from wavry.platform.uinput import (
    UI_DEV_CREATE,
    UI_DEV_DESTROY,
    UI_DEV_SETUP,
    UinputInjector,
    probe,
)

EVENT = struct.Struct("=qqHHi")


class Recorder:
    def __init__(self) -> None:
        self.ioctls: list[tuple[int, int | bytes]] = []
        self.data = b""
        self.closed = False

    def ioctl(self, request: int, arg: int | bytes) -> None:
        self.ioctls.append((request, arg))

    def write(self, data: bytes) -> None:
        assert len(data) % EVENT.size == 0
        self.data += data

    def close(self) -> None:
        self.closed = True

    def events(self) -> list[tuple[int, int, int]]:
        out = [EVENT.unpack_from(self.data, i)[2:] for i in range(0, len(self.data), EVENT.size)]
        self.data = b""
        return out


@pytest.fixture
def rig() -> tuple[UinputInjector, Recorder, Recorder]:
    devs: list[Recorder] = []

    def opener() -> Recorder:
        devs.append(Recorder())
        return devs[-1]

    inj = UinputInjector(opener)
    return inj, devs[0], devs[1]


SYN = (0, 0, 0)


def test_ioctl_constants_match_linux_headers() -> None:
    # Values from <linux/uinput.h> on x86_64/aarch64.
    assert UI_DEV_CREATE == 0x5501 and UI_DEV_DESTROY == 0x5502
    assert UI_DEV_SETUP == 0x405C5503
    assert uinput.UI_ABS_SETUP == 0x401C5504
    assert uinput.UI_SET_EVBIT == 0x40045564 and uinput.UI_SET_KEYBIT == 0x40045565
    assert EVENT.size == 24


def test_devices_are_set_up_and_created(rig: tuple[UinputInjector, Recorder, Recorder]) -> None:
    _, kbd, ptr = rig
    assert kbd.ioctls[0] == (uinput.UI_SET_EVBIT, uinput.EV_KEY)
    keybits = {a for r, a in kbd.ioctls if r == uinput.UI_SET_KEYBIT}
    assert keybits == set(range(1, 256))
    setup = next(a for r, a in kbd.ioctls if r == UI_DEV_SETUP)
    assert isinstance(setup, bytes) and len(setup) == 92 and b"Wavry keyboard" in setup
    assert kbd.ioctls[-1] == (UI_DEV_CREATE, 0) and ptr.ioctls[-1] == (UI_DEV_CREATE, 0)
    assert {a for r, a in ptr.ioctls if r == uinput.UI_SET_RELBIT} >= {0, 1, 6, 8}
    abs_setups = [a for r, a in ptr.ioctls if r == uinput.UI_ABS_SETUP]
    assert len(abs_setups) == 2
    assert struct.unpack("=H2xiiiiii", abs_setups[0])[:4] == (0, 0, 0, 65535)


def test_keys_buttons_moves(rig: tuple[UinputInjector, Recorder, Recorder]) -> None:
    inj, kbd, ptr = rig
    inj.key(evdev_code("A"), True)
    inj.key(evdev_code("A"), False)
    assert kbd.events() == [(1, 30, 1), SYN, (1, 30, 0), SYN]
    for b, code in ((1, 0x110), (2, 0x112), (3, 0x111), (4, 0x113), (5, 0x114)):
        inj.button(b, True)
        inj.button(b, False)
        assert ptr.events() == [(1, code, 1), SYN, (1, code, 0), SYN]
    inj.mouse_move_abs(0.5, 1.5)  # clamped to [0, 1]
    assert ptr.events() == [(3, 0, 32768), (3, 1, 65535), SYN]
    inj.mouse_motion(3.5, -2.0)
    inj.mouse_motion(0.5, 0.0)
    assert ptr.events() == [(2, 0, 3), (2, 1, -2), SYN, (2, 0, 1), SYN]


def test_scroll_signs_and_hi_res(rig: tuple[UinputInjector, Recorder, Recorder]) -> None:
    inj, _, ptr = rig
    inj.scroll(0, 1)  # up
    assert ptr.events() == [(2, 0x0B, 120), (2, 0x08, 1), SYN]
    inj.scroll(0, -0.5)
    inj.scroll(0, -0.5)
    assert ptr.events() == [(2, 0x0B, -60), SYN, (2, 0x0B, -60), (2, 0x08, -1), SYN]
    inj.scroll(1, 0)  # right
    assert ptr.events() == [(2, 0x0C, 120), (2, 0x06, 1), SYN]


def test_release_all_and_close(rig: tuple[UinputInjector, Recorder, Recorder]) -> None:
    inj, kbd, ptr = rig
    inj.key(42, True)
    inj.key(30, True)
    inj.button(3, True)
    kbd.events()
    ptr.events()
    inj.key(31, False)  # not held: nothing sent
    assert kbd.events() == []
    inj.close()
    assert kbd.events() == [(1, 30, 0), SYN, (1, 42, 0), SYN]
    assert ptr.events() == [(1, 0x111, 0), SYN]
    assert kbd.ioctls[-1] == (UI_DEV_DESTROY, 0) and kbd.closed and ptr.closed
    with pytest.raises(InjectionError):
        UinputInjector(lambda: Recorder()).key(300, True)


def test_real_device_path_and_probe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = probe()
    if not os.path.exists("/dev/uinput"):
        assert not result.ok and "modprobe uinput" in result.remedy
        with pytest.raises(InjectionError, match="modprobe uinput"):
            UinputInjector()
    missing = probe(str(tmp_path / "nope"))
    assert not missing.ok
    locked = tmp_path / "uinput"
    locked.write_bytes(b"")
    locked.chmod(0o400)
    if os.geteuid() != 0:
        assert "udev rule" in probe(str(locked)).remedy
    # The real writer: os.write of whole records, fcntl.ioctl on the descriptor. A regular file
    # takes the writes but refuses uinput ioctls (ENOTTY), which must surface as InjectionError.
    target = tmp_path / "events.bin"
    target.write_bytes(b"")
    dev = uinput.FileDevice(str(target))
    dev.write(uinput.input_event(1, 30, 1, now=1.5))
    dev.close()
    assert EVENT.unpack(target.read_bytes()) == (1, 500000, 1, 30, 1)
    with pytest.raises(InjectionError, match="setup failed"):
        UinputInjector(lambda: uinput.FileDevice(str(target)))
