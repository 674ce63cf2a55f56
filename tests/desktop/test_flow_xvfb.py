"""Whole flows under Xvfb — Qt on a real X server, the stream's SDL window on the same display —
run by tests/desktop/xvfb_flow.py in a child process (one Qt platform per process; the rest of
the desktop tests use the offscreen one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.desktop.conftest import REACH, shot_dir
from wavry.platform.xvfb import XvfbServer

FLOW = Path(__file__).with_name("xvfb_flow.py")


def flow(tmp_path: Path, scenario: str, *args: str, size: tuple[int, int] = (1280, 800),
         env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    with XvfbServer(*size) as xvfb:
        full = xvfb.env() | {
            "QT_QPA_PLATFORM": "xcb",
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "unused-config"),
            "WAVRY_FLOW_TMP": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        full.pop("DBUS_SESSION_BUS_ADDRESS", None)
        out = subprocess.run(
            [sys.executable, str(FLOW), scenario, str(shot_dir(tmp_path)), *args],
            env=full, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
    lines = out.stdout.strip().splitlines()
    assert lines, f"no result; stderr:\n{out.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert out.returncode == 0 and "error" not in result, (result, out.stderr[-3000:])
    return result


@pytest.mark.slow
def test_pairing_by_clicking_then_the_stream_window_presents_frames(tmp_path: Path) -> None:
    r = flow(tmp_path, "pairing")
    assert r["request_names_client"]  # A showed B's Wavry ID with the code
    assert r["stream_window"] == ["Wavry: den"]
    assert all(n > 0 for n in r["frames_shown_per_second"]), r
    assert r["window_closed"]
    assert r["trusted"] == [r["client_id"]]  # paired: A trusts B from now on


@REACH
@pytest.mark.slow
def test_sign_in_see_the_host_online_connect_and_watch(
    tmp_path: Path, gateway: Any, hosts: Any
) -> None:
    password = "correct horse battery staple 42"
    home = tmp_path / "den-home"
    env = dict(os.environ, XDG_CONFIG_HOME=str(home), WAVRY_PASSWORD=password)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    reg = subprocess.run(
        [sys.executable, "-m", "wavry", "register", gateway.url, "--username", "ada",
         "--email", "ada@example.org", "--device-kind", "host"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert reg.returncode == 0, reg.stderr
    hosts("den", None, "--gateway", gateway.url, "--name", "den")
    r = flow(tmp_path, "gateway", gateway.url, "ada", password)
    assert r["listed"] == ["den", "your account", "online"]
    assert r["stream_window"] == ["Wavry: den"]
    assert all(n > 0 for n in r["frames_shown_per_second"]), r
    assert r["stream_error"] == ""


@pytest.mark.slow
def test_the_views_at_twice_the_scale(tmp_path: Path) -> None:
    r = flow(tmp_path, "hidpi", size=(2560, 1600), env={"QT_SCALE_FACTOR": "2"})
    assert r["device_pixel_ratio"] == 2.0
    assert r["size"] == [1280, 800]  # the same layout, drawn twice as fine
    assert os.path.exists(shot_dir(tmp_path) / "hidpi-computers.png")
