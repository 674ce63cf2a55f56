"""`wavry desktop` on a virtual X display with a fresh configuration shows a window titled
"Wavry" (the first-run dialog over it) within 15 s, and SIGTERM ends it cleanly — nothing on the
terminal but what the user asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import WAVRY
from wavry.platform.xvfb import XvfbServer

LIMIT_S = 15.0


def window_names(env: dict[str, str]) -> list[str]:
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^Wavry"],
                           env=env, capture_output=True, text=True)  # fmt: skip
    names = []
    for wid in found.stdout.split():
        name = subprocess.run(["xdotool", "getwindowname", wid], env=env, capture_output=True,
                              text=True).stdout.strip()  # fmt: skip
        names.append(name)
    return names


@pytest.mark.slow
def test_wavry_desktop_shows_its_window_within_15_s(tmp_path: Path) -> None:
    with XvfbServer(1280, 800) as xvfb:
        env = xvfb.env() | {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("DBUS_SESSION_BUS_ADDRESS", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY"):
            env.pop(name, None)
        started = time.monotonic()
        proc = subprocess.Popen([*WAVRY, "desktop"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        shown = None
        try:
            while time.monotonic() - started < LIMIT_S + 30 and proc.poll() is None:
                names = window_names(env)
                if "Wavry" in names and "Wavry: welcome" in names:
                    shown = time.monotonic() - started
                    break
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
        print(f"wavry desktop: window after {shown} s (limit {LIMIT_S:g} s)")
        assert shown is not None, f"no Wavry window; stderr: {err[-2000:]}"
        assert shown < LIMIT_S, f"window after {shown:.1f} s"
        assert proc.returncode == 0, err[-2000:]
        assert "Traceback" not in err and out == "", (out, err)
        log = tmp_path / "state" / "wavry" / "desktop.log"
        assert "window shown" in log.read_text()
        assert os.stat(tmp_path / "config" / "wavry" / "identity.pem").st_mode & 0o077 == 0


def test_without_a_display_it_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}  # fmt: skip
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    out = subprocess.run([*WAVRY, "desktop"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr == (
        "error: no display to open a window on: run `wavry desktop` inside your desktop session\n"
    )
