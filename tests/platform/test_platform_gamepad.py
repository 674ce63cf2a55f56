"""Virtual uinput gamepads against a recorder at the device-write boundary (no /dev/uinput)."""

from __future__ import annotations

import os
import struct

import pytest

from wavry.platform import gamepad_uinput as gp
from wavry.platform import uinput
from wavry.platform.gamepad_uinput import VirtualGamepads, probe, scale_stick, scale_trigger
from wavry.platform.input import InjectionError
from wavry.runtime.messages import GamepadInput

EVENT = struct.Struct("=qqHHi")
ABS_SETUP = struct.Struct("=H2xiiiiii")
SETUP = struct.Struct("=HHHH80sI")
SYN = (0, 0, 0)
KEY, ABS = 1, 3


class Recorder:
    def __init__(self) -> None:
        self.ioctls: list[tuple[int, int | bytes]] = []
        self.data = b""
        self.writes = 0
        self.closed = False

    def ioctl(self, request: int, arg: int | bytes) -> None:
        self.ioctls.append((request, arg))

    def write(self, data: bytes) -> None:
        assert len(data) % EVENT.size == 0
        self.data += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def records(self) -> list[tuple[int, int, int, int, int]]:
        return [EVENT.unpack_from(self.data, i) for i in range(0, len(self.data), EVENT.size)]

    def events(self) -> list[tuple[int, int, int]]:
        out = [r[2:] for r in self.records()]
        self.data = b""
        return out


class Rig:
    def __init__(self) -> None:
        self.devs: list[Recorder] = []
        self.pads = VirtualGamepads(self.open, clock=lambda: 1700000000.25)

    def open(self) -> Recorder:
        self.devs.append(Recorder())
        return self.devs[-1]


def msg(
    pad: int, axes: dict[int, float] | None = None, buttons: dict[int, bool] | None = None
) -> GamepadInput:
    return GamepadInput(pad, tuple((axes or {}).items()), tuple((buttons or {}).items()))


def apply(pads: VirtualGamepads, event: GamepadInput) -> None:
    pads.apply(event.pad, event.axes, event.buttons)


def test_scaling() -> None:
    assert scale_stick(0.0) == 0
    assert scale_stick(1.0) == 32767 and scale_stick(-1.0) == -32768
    assert scale_stick(0.5) == 16384 and scale_stick(-0.5) == -16384
    assert scale_stick(7.0) == 32767 and scale_stick(float("nan")) == 0
    assert scale_trigger(0.0) == 0 and scale_trigger(1.0) == 1023
    assert scale_trigger(0.5) == 512 and scale_trigger(-0.2) == 0 and scale_trigger(2) == 1023


def test_device_created_on_first_message_as_x360_pad() -> None:
    rig = Rig()
    assert rig.devs == []
    apply(rig.pads, msg(2, {0: 0.0}))
    assert len(rig.devs) == 1 and rig.pads.pads == [2]
    dev = rig.devs[0]
    ev_bits = [a for r, a in dev.ioctls if r == uinput.UI_SET_EVBIT]
    assert ev_bits == [KEY, ABS]
    keys = {a for r, a in dev.ioctls if r == uinput.UI_SET_KEYBIT}
    assert keys == {0x130, 0x131, 0x133, 0x134, 0x136, 0x137, 0x13A, 0x13B, 0x13C, 0x13D, 0x13E}
    absbits = {a for r, a in dev.ioctls if r == uinput.UI_SET_ABSBIT}
    assert absbits == {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x10, 0x11}
    ranges = {
        ABS_SETUP.unpack(a)[0]: ABS_SETUP.unpack(a)[2:4]
        for r, a in dev.ioctls
        if r == uinput.UI_ABS_SETUP and isinstance(a, bytes)
    }
    assert ranges == {
        0x00: (-32768, 32767),
        0x01: (-32768, 32767),
        0x03: (-32768, 32767),
        0x04: (-32768, 32767),
        0x02: (0, 1023),
        0x05: (0, 1023),
        0x10: (-1, 1),
        0x11: (-1, 1),
    }
    setup = next(a for r, a in dev.ioctls if r == uinput.UI_DEV_SETUP)
    assert isinstance(setup, bytes) and len(setup) == 92
    bus, vendor, product, version, name, ff = SETUP.unpack(setup)
    assert (bus, vendor, product, version, ff) == (0x03, 0x045E, 0x028E, 0x0110, 0)
    assert name.rstrip(b"\0") == b"Wavry virtual pad 2"
    assert dev.ioctls[-1] == (uinput.UI_DEV_CREATE, 0)
    # the ABS setups precede DEV_SETUP/CREATE, as the kernel requires
    kinds = [r for r, _ in dev.ioctls]
    assert kinds.index(uinput.UI_DEV_SETUP) > max(
        i for i, r in enumerate(kinds) if r == uinput.UI_ABS_SETUP
    )
    apply(rig.pads, msg(2, {1: 0.5}))
    apply(rig.pads, msg(0, {1: 0.5}))
    assert len(rig.devs) == 2 and rig.pads.pads == [0, 2]  # one device per pad id


def test_axes_buttons_exact_bytes_and_syn_after_each_message() -> None:
    rig = Rig()
    apply(rig.pads, msg(0, {0: 1.0, 1: -0.5, 2: -1.0, 3: 0.25, 4: 1.0, 5: 0.5}, {0: True}))
    dev = rig.devs[0]
    assert dev.writes == 1  # one message → one write, SYN_REPORT last
    raw = dev.data
    assert raw[:24] == EVENT.pack(1700000000, 250000, ABS, 0x00, 32767)
    assert raw[-24:] == EVENT.pack(1700000000, 250000, 0, 0, 0)
    assert dev.events() == [
        (ABS, 0x00, 32767),
        (ABS, 0x01, -16384),
        (ABS, 0x03, -32768),
        (ABS, 0x04, 8192),
        (ABS, 0x02, 1023),
        (ABS, 0x05, 512),
        (KEY, 0x130, 1),
        SYN,
    ]
    rifts = {1: 0x131, 2: 0x133, 3: 0x134, 4: 0x136, 5: 0x137, 6: 0x13A, 7: 0x13B}
    rifts |= {8: 0x13C, 9: 0x13D, 10: 0x13E}
    for b, code in rifts.items():
        apply(rig.pads, msg(0, buttons={b: True}))
        apply(rig.pads, msg(0, buttons={b: False}))
        assert dev.events() == [(KEY, code, 1), SYN, (KEY, code, 0), SYN]


def test_dpad_is_the_hat() -> None:
    rig = Rig()
    pads = rig.pads
    apply(pads, msg(1, buttons={11: True}))  # up
    dev = rig.devs[0]
    assert dev.events() == [(ABS, 0x11, -1), SYN]
    apply(pads, msg(1, buttons={14: True}))  # + right: diagonal
    assert dev.events() == [(ABS, 0x10, 1), SYN]
    apply(pads, msg(1, buttons={11: False, 12: True}))  # up → down in one message
    assert dev.events() == [(ABS, 0x11, 1), SYN]
    apply(pads, msg(1, buttons={13: True}))  # left and right both held: centred
    assert dev.events() == [(ABS, 0x10, 0), SYN]
    apply(pads, msg(1, buttons={14: False, 12: False}))
    assert dev.events() == [(ABS, 0x10, -1), (ABS, 0x11, 0), SYN]
    apply(pads, msg(1, buttons={13: True}))  # no change: nothing written
    assert dev.events() == []


def test_invalid_ids_and_unknown_codes() -> None:
    rig = Rig()
    with pytest.raises(InjectionError, match=r"0\.\.15"):
        apply(rig.pads, msg(16, {0: 1.0}))
    assert rig.devs == []
    apply(rig.pads, msg(3, {9: 1.0}, {20: True}))
    assert rig.pads.ignored == 2 and rig.devs[0].events() == []
    apply(rig.pads, msg(3, buttons={0: True}))
    assert rig.devs[0].events() == [(KEY, 0x130, 1), SYN]


def test_release_all_neutral_and_close_destroys() -> None:
    rig = Rig()
    pads = rig.pads
    apply(pads, msg(0, {0: 0.7, 5: 1.0}, {0: True, 11: True, 5: True}))
    apply(pads, msg(1, {3: -1.0}))
    a, b = rig.devs
    a.events()
    b.events()
    neutral_axes = [(ABS, c, 0) for c in (0x00, 0x01, 0x03, 0x04, 0x02, 0x05, 0x10, 0x11)]
    pads.release_all()
    assert a.events() == [*neutral_axes, (KEY, 0x130, 0), (KEY, 0x137, 0), SYN]
    assert b.events() == [*neutral_axes, SYN]
    apply(pads, msg(0, buttons={11: True}))  # hat state was reset: up is sent again
    assert a.events() == [(ABS, 0x11, -1), SYN]
    with pads:
        pass
    assert a.events() == [*neutral_axes, SYN]
    assert a.ioctls[-1] == (uinput.UI_DEV_DESTROY, 0) and b.ioctls[-1] == (uinput.UI_DEV_DESTROY, 0)
    assert a.closed and b.closed and pads.pads == []


class BrokenIoctl(Recorder):
    def ioctl(self, request: int, arg: int | bytes) -> None:
        if request == uinput.UI_DEV_CREATE:
            raise OSError(25, "Inappropriate ioctl for device")
        super().ioctl(request, arg)


def test_setup_failure_closes_the_device() -> None:
    devs: list[Recorder] = []

    def opener() -> Recorder:
        devs.append(BrokenIoctl())
        return devs[-1]

    pads = VirtualGamepads(opener)
    with pytest.raises(InjectionError, match="setup failed"):
        apply(pads, msg(0, {0: 1.0}))
    assert devs[0].closed and pads.pads == []


def test_probe_and_real_device_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = probe(str(tmp_path / "nope"))
    assert not missing.ok and "modprobe uinput" in missing.remedy
    assert "udev" in missing.remedy
    locked = tmp_path / "uinput"
    locked.write_bytes(b"")
    locked.chmod(0o400)
    if os.geteuid() != 0:
        result = probe(str(locked))
        assert not result.ok and "99-wavry-uinput.rules" in result.remedy
        assert "usermod -aG input" in result.remedy
    writable = tmp_path / "ok"
    writable.write_bytes(b"")
    assert probe(str(writable)).ok
    if not os.path.exists("/dev/uinput"):
        assert not probe().ok
        # the default opener is the real /dev/uinput: missing → InjectionError with the remedy
        with pytest.raises(InjectionError, match="modprobe uinput"):
            apply(VirtualGamepads(), msg(0, {0: 1.0}))
    # the real writer against a regular file: writes land, uinput ioctls fail → InjectionError
    target = tmp_path / "events.bin"
    target.write_bytes(b"")
    pads = VirtualGamepads(lambda: uinput.FileDevice(str(target)))
    with pytest.raises(InjectionError, match="setup failed"):
        apply(pads, msg(0, {0: 1.0}))
    assert gp.VENDOR_ID == 0x045E and gp.PRODUCT_ID == 0x028E
