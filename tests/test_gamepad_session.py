"""A gamepad from outside: an SDL virtual game controller on the client window (dummy video
driver) in a real session with a real `wavry host` process. Its input crosses RIFT and reaches the
host's gamepad injection; on this machine there is no /dev/uinput, so the host says exactly that
(once) and the session goes on. The uinput side is tested at the device-write boundary in
tests/platform/test_platform_gamepad.py."""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.skipif(
    os.path.exists("/dev/uinput"), reason="with /dev/uinput the host creates a real pad"
)


def test_controller_input_reaches_the_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, proc: SimpleNamespace
) -> None:
    import sdl2

    from wavry.runtime.connect import ConnectOptions, run_connect

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("DISPLAY", ":wavry-no-such-display")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with proc.host_process(tmp_path / "h", *proc.HOST_ARGS) as (port, lines):
        pressed = threading.Event()

        def play() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not sdl2.SDL_WasInit(
                sdl2.SDL_INIT_GAMECONTROLLER
            ):
                time.sleep(0.05)
            time.sleep(1.0)
            desc = sdl2.SDL_VirtualJoystickDesc()
            desc.version = sdl2.SDL_VIRTUAL_JOYSTICK_DESC_VERSION
            desc.type = sdl2.SDL_JOYSTICK_TYPE_GAMECONTROLLER
            desc.naxes, desc.nbuttons, desc.nhats = 6, 15, 0
            desc.name = b"wavry session pad"
            index = sdl2.SDL_JoystickAttachVirtualEx(ctypes.byref(desc))
            assert index >= 0, sdl2.SDL_GetError()
            time.sleep(0.5)  # the window's poll opens it as a game controller
            js = sdl2.SDL_JoystickFromInstanceID(sdl2.SDL_JoystickGetDeviceInstanceID(index))
            assert js, sdl2.SDL_GetError()
            sdl2.SDL_JoystickSetVirtualButton(js, sdl2.SDL_CONTROLLER_BUTTON_A, 1)
            sdl2.SDL_JoystickSetVirtualAxis(js, 0, 32767)
            pressed.set()

        t = threading.Thread(target=play, daemon=True)
        t.start()
        opts = ConnectOptions(host="127.0.0.1", port=port, seconds=5.0, config_dir=tmp_path / "c")
        summary = asyncio.run(run_connect(opts)).summary
        t.join(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("gamepad input" in x for x in lines):
            time.sleep(0.1)
    log = "".join(lines)
    assert pressed.is_set()
    assert "gamepad input ignored" in log and "uinput" in log, log
    assert summary["frames_presented"] > 0
