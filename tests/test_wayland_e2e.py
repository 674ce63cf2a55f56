"""End to end on Wayland plumbing: a real `wavry host --source wayland` process captures through
the (fake) xdg-desktop-portal and a real PipeWire daemon, and a real headless `wavry connect`
decodes what it sends. The picture is the synthetic marker source published as a PipeWire node,
so the client's snapshot must carry a readable frame id.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from wavry.media.marker import read_marker
from wavry.media.wayland import gstreamer_problem
from wavry.testing import pwsession
from wavry.testing.portal_fake import FakePortal
from wavry.testing.pwsession import PipeWireSession

pytestmark = [
    pytest.mark.skipif(not pwsession.probe().ok, reason="PipeWire is not installed"),
    pytest.mark.skipif(bool(gstreamer_problem()), reason=gstreamer_problem() or "GStreamer ok"),
]

WAVRY = [sys.executable, "-m", "wavry"]


@pytest.fixture(scope="module")
def desktop() -> Iterator[tuple[PipeWireSession, FakePortal]]:
    with PipeWireSession() as pw, FakePortal(pw, width=640, height=360, fps=30) as portal:
        yield pw, portal


def _env(pw: PipeWireSession, home: Path, **extra: str) -> dict[str, str]:
    env = pw.env()
    env.update(XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    env.pop("DISPLAY", None)
    return env


def _start_host(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], int, list[str]]:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [*WAVRY, "host", "--listen", f"127.0.0.1:{port}", "--trust", "any", "--fps", "30", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "picture" in line:  # the banner's picture line (source or why there is none)
            break
    return proc, port, lines


def _stop(proc: subprocess.Popen[str], lines: list[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    lines.append(out or "")
    return "".join(lines)


def test_host_source_wayland_streams_to_headless_connect(
    desktop: tuple[PipeWireSession, FakePortal], tmp_path: Path
) -> None:
    pw, portal = desktop
    home = tmp_path / "host"
    env = _env(pw, home)
    proc, port, lines = _start_host(env, "--source", "wayland")
    try:
        assert proc.poll() is None, "".join(lines)
        stats = tmp_path / "stats.json"
        snap = tmp_path / "snap.png"
        r = subprocess.run(
            [*WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--seconds", "4",
             "--stats-json", str(stats), "--snapshot", str(snap)],
            env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "client"), PYTHONUNBUFFERED="1"),
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    finally:
        log = _stop(proc, lines)
    assert r.returncode == 0, r.stderr + log
    data = json.loads(stats.read_text())
    assert data["frames_presented"] > 30, (data, log)
    assert "picture: wayland 640x360@30" in log, log
    assert "input from clients cannot be applied" not in log, log
    # the pixels went PipeWire → encoder → RIFT → decoder: the marker is still readable
    with av.open(str(snap)) as c:
        frame = next(c.decode(video=0))
    rgb = frame.to_ndarray(format="rgb24")
    assert rgb.shape == (360, 640, 3)
    assert read_marker(np.asarray(rgb)) is not None
    # one portal session to learn the size at start-up, one per stream; both combined with
    # RemoteDesktop, the second restored with the token of the first
    starts = portal.calls_of("SelectDevices")
    assert len(starts) >= 2
    assert starts[1].args[1].get("restore_token") == portal.tokens_issued[0]
    token_file = home / "wavry" / "portal-restore-token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    saved = json.loads(token_file.read_text())["remotedesktop"]
    assert saved in portal.tokens_issued
    assert not portal.sessions, "the host left a portal session open"


def test_default_source_is_wayland_when_portal_reachable(
    desktop: tuple[PipeWireSession, FakePortal], tmp_path: Path
) -> None:
    pw, _ = desktop
    env = _env(pw, tmp_path / "h", WAYLAND_DISPLAY="wayland-wavry-test")
    proc, _port, lines = _start_host(env)
    log = _stop(proc, lines)
    assert "picture: wayland 640x360@30 (Wayland, portal path: xdg-desktop-portal" in log, log


def test_wayland_display_without_portal_falls_back_to_x11_reason(tmp_path: Path) -> None:
    from wavry.runtime.sources import detect_source

    old = {k: os.environ.get(k) for k in ("WAYLAND_DISPLAY", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
    try:
        os.environ["WAYLAND_DISPLAY"] = "wayland-x"
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={tmp_path / 'no-bus'}"
        os.environ["DISPLAY"] = ":99"
        choice = detect_source(None, None)
        assert choice is not None and choice.name == "x11"
        assert "Wayland unusable: no usable path" in choice.reason
        del os.environ["DISPLAY"]
        choice = detect_source(None, None)
        assert choice is not None and choice.name == "wayland"
        assert "cannot connect to the D-Bus session bus" in choice.reason
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
