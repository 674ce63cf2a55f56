"""Drag and drop onto the client window: a synthetic SDL_DROPFILE event pushed into the real window
loop of `wavry connect` (SDL dummy video driver) sends the file to a real host's --file-out-dir."""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest


def _push_drop(path: Path) -> None:
    """What SDL does for a drop: an SDL_DROPFILE event owning an SDL_malloc'ed path."""
    import sdl2

    raw = os.fsencode(path) + b"\0"
    buf = sdl2.SDL_malloc(len(raw))
    ctypes.memmove(buf, raw, len(raw))
    event = sdl2.SDL_Event()
    event.type = sdl2.SDL_DROPFILE
    ctypes.c_void_p.from_address(
        ctypes.addressof(event.drop) + sdl2.SDL_DropEvent.file.offset
    ).value = buf
    assert sdl2.SDL_PushEvent(ctypes.byref(event)) == 1, sdl2.SDL_GetError()


def test_window_reports_dropped_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    from wavry.client.window import VideoWindow

    w = VideoWindow("dnd", 64, 48)
    try:
        _push_drop(tmp_path / "ä b.txt")
        batch = w.poll()
        assert batch.dropped_files == [str(tmp_path / "ä b.txt")]
        assert batch.events == []  # a drop is not input for the host
        assert w.poll().dropped_files == []
    finally:
        w.close()


def test_dropped_file_arrives_at_the_host(
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
    src = tmp_path / "dropped file.bin"
    src.write_bytes(os.urandom(700_000))
    out_dir = tmp_path / "D"
    with proc.host_process(tmp_path / "h", *proc.HOST_ARGS, "--file-out-dir", str(out_dir)) as (
        port,
        lines,
    ):
        done = threading.Event()

        def drop_when_the_window_is_up() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not sdl2.SDL_WasInit(sdl2.SDL_INIT_VIDEO):
                time.sleep(0.05)
            time.sleep(0.5)
            _push_drop(src)
            done.set()

        t = threading.Thread(target=drop_when_the_window_is_up, daemon=True)
        t.start()
        opts = ConnectOptions(
            host="127.0.0.1",
            port=port,
            seconds=15.0,
            config_dir=tmp_path / "c",
            file_out_dir=tmp_path / "C",
        )
        result = asyncio.run(run_connect(opts))
        summary = result.summary
        t.join(5)
        assert done.is_set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (out_dir / src.name).exists():
            time.sleep(0.1)
    err = capsys.readouterr().err
    assert (out_dir / src.name).exists(), err + "".join(lines)
    assert (out_dir / src.name).read_bytes() == src.read_bytes(), err + "".join(lines)
    assert "offering dropped file.bin (700000 bytes) to the host (dropped on the window)" in err
    assert "sent dropped file.bin: 100 %, host saved as dropped file.bin" in err
    assert "received dropped file.bin" in "".join(lines)
    assert summary["frames_presented"] > 0
