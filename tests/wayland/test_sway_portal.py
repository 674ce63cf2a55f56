"""wlroots: xdg-desktop-portal-wlr under a real headless sway, as far as it goes without a GPU.

sway (pixman renderer, headless back-end), a private session bus that activates the real
xdg-desktop-portal and its wlr back-end, PipeWire and WirePlumber. The portal path is chosen
(no Mutter here) and runs CreateSession → SelectSources → Start; without /dev/dri wlroots offers
no DMA-BUF screencopy, so xdpw ends Start with response 2, and the capture must say so clearly
instead of hanging. (The clipboard under sway: tests/test_wayland_clipboard.py.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavry.media.types import CaptureError
from wavry.media.wayland import WaylandCapture, gstreamer_problem
from wavry.platform.screencast import select_wayland_path
from wavry.testing.gnome import processes_in
from wavry.testing.sway import HeadlessSway, SwayError

NEEDED = ("sway", "xdg-desktop-portal", "pipewire", "wireplumber", "dbus-daemon")
XDPW = Path("/usr/libexec/xdg-desktop-portal-wlr")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(shutil.which(b) is None and not Path("/usr/libexec", b).exists() for b in NEEDED)
        or not XDPW.exists(),
        reason="sway, xdg-desktop-portal(-wlr), PipeWire or D-Bus missing",
    ),
    pytest.mark.skipif(bool(gstreamer_problem()), reason=gstreamer_problem() or "GStreamer ok"),
]


@pytest.fixture(scope="module")
def sway_session() -> Iterator[dict[str, str]]:
    try:
        sway = HeadlessSway().start()
    except SwayError as exc:
        pytest.skip(f"headless sway does not run here: {exc}")
    run = Path(tempfile.mkdtemp(prefix="wavry-wlr-"))
    os.chmod(run, 0o700)
    env = dict(os.environ)
    for k in ("DISPLAY", "PIPEWIRE_REMOTE", "WAVRY_WAYLAND_PATH"):
        env.pop(k, None)
    env.update(
        XDG_RUNTIME_DIR=str(run),
        WAYLAND_DISPLAY=str(Path(sway.runtime_dir) / sway.wayland_display),
        XDG_CURRENT_DESKTOP="sway",
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={run / 'bus'}",
    )
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*argv: str) -> None:
        procs.append(
            subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )  # fmt: skip

    try:
        spawn(
            "dbus-daemon",
            "--session",
            "--nofork",
            "--nopidfile",
            f"--address={env['DBUS_SESSION_BUS_ADDRESS']}",
        )
        spawn("pipewire")
        deadline = time.monotonic() + 15
        while not ((run / "bus").exists() and (run / "pipewire-0").exists()):
            assert time.monotonic() < deadline, "D-Bus or PipeWire did not start"
            time.sleep(0.05)
        spawn("wireplumber")
        # the first call activates xdg-desktop-portal and its wlr back-end: wait for it here
        deadline = time.monotonic() + 60
        while subprocess.run(
            ["gdbus", "call", "--session", "-d", "org.freedesktop.portal.Desktop", "-o",
             "/org/freedesktop/portal/desktop", "-m", "org.freedesktop.DBus.Properties.Get",
             "org.freedesktop.portal.ScreenCast", "version"],
            env=env, capture_output=True, timeout=30, check=False,
        ).returncode:  # fmt: skip
            assert time.monotonic() < deadline, "xdg-desktop-portal did not start"
            time.sleep(0.5)
        yield env
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        for pid in processes_in(run):  # the portal and its back-end, activated by the bus
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        sway.stop()
        leftovers = processes_in(run)
        shutil.rmtree(run, ignore_errors=True)
        assert leftovers == []


def test_portal_wlr_chosen_and_gpu_less_refusal_is_explained(
    sway_session: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for k, v in sway_session.items():
        if k in ("XDG_RUNTIME_DIR", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP",
                 "DBUS_SESSION_BUS_ADDRESS"):  # fmt: skip
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("WAVRY_WAYLAND_PATH", raising=False)
    path = select_wayland_path()
    assert path.name == "portal", path
    mutter, portal = path.probes
    assert not mutter.ok and portal.ok and "ScreenCast v" in portal.detail, path.probes
    assert "no RemoteDesktop" in portal.detail or "devices 0x0" in portal.detail  # xdpw: none
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cap = WaylandCapture(30, dialog_timeout=30, notice=lambda _text: None)
    started = time.monotonic()
    with pytest.raises(CaptureError) as err:
        cap.start()
    assert time.monotonic() - started < 30
    text = str(err.value)
    assert "response 2" in text and "without granting it" in text, text
    assert cap.cast is None
