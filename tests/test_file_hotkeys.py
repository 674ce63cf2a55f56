"""Pause/resume and cancel of outgoing file transfers from the client window (Ctrl+Alt+Shift+P /
+C, SDL dummy video driver) in a real session with a real host: the host sees the pause, the
transfer resumes, and a cancel leaves no file in the host's --file-out-dir."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest


def _push_hotkey(scancode: int) -> None:
    import sdl2

    event = sdl2.SDL_Event()
    event.type = sdl2.SDL_KEYDOWN
    event.key.type = sdl2.SDL_KEYDOWN
    event.key.state = sdl2.SDL_PRESSED
    event.key.keysym.scancode = scancode
    event.key.keysym.mod = sdl2.KMOD_LCTRL | sdl2.KMOD_LALT | sdl2.KMOD_LSHIFT
    assert sdl2.SDL_PushEvent(event) == 1, sdl2.SDL_GetError()


def test_window_hotkeys_map_to_file_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    import sdl2

    from wavry.client.window import VideoWindow, WindowAction

    w = VideoWindow("hotkeys", 64, 48)
    try:
        _push_hotkey(sdl2.SDL_SCANCODE_P)
        _push_hotkey(sdl2.SDL_SCANCODE_C)
        batch = w.poll()
        assert batch.actions == [WindowAction.TOGGLE_FILE_PAUSE, WindowAction.CANCEL_FILES]
        assert batch.events == []  # hotkeys never reach the host
    finally:
        w.close()


def test_pause_resume_and_cancel_in_a_real_session(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    proc: SimpleNamespace,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sdl2

    from wavry.runtime.connect import ConnectOptions, run_connect

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("DISPLAY", ":wavry-no-such-display")  # a window needs a desktop variable
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(40_000_000))  # at the floor-only rate this takes far longer
    out_dir = tmp_path / "D"
    with proc.host_process(tmp_path / "h", *proc.HOST_ARGS, "--file-out-dir", str(out_dir)) as (
        port,
        lines,
    ):

        def press_keys() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not sdl2.SDL_WasInit(sdl2.SDL_INIT_VIDEO):
                time.sleep(0.05)
            time.sleep(2.0)  # the transfer is under way
            _push_hotkey(sdl2.SDL_SCANCODE_P)  # pause
            time.sleep(1.0)
            _push_hotkey(sdl2.SDL_SCANCODE_P)  # resume
            time.sleep(1.0)
            _push_hotkey(sdl2.SDL_SCANCODE_C)  # cancel

        t = threading.Thread(target=press_keys, daemon=True)
        t.start()
        opts = ConnectOptions(
            host="127.0.0.1",
            port=port,
            seconds=7.0,
            config_dir=tmp_path / "c",
            file_out_dir=tmp_path / "C",
            send_files=[src],
            file_spare=False,
        )
        asyncio.run(run_connect(opts))
        t.join(5)
        time.sleep(0.5)
    err = capsys.readouterr().err
    host_log = "".join(lines)
    assert "paused 1 file transfer(s)" in err, err
    assert "resumed 1 file transfer(s)" in err, err
    assert "cancelled 1 file transfer(s)" in err, err
    assert not (out_dir / src.name).exists(), host_log
    assert not list(out_dir.glob("*.part")), host_log  # the host dropped the partial file
