"""Wayland clipboard with wl-clipboard on a private headless sway: the backend on its own
(change-driven, no echo, both ways against the real wl-copy / wl-paste tools), then through a real
session (host on Xvfb, client on the sway session).

sway refuses to run as root, so as root the helper runs it as `nobody` (setpriv); when sway
cannot come up here at all the tests skip with sway's own error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from wavry.platform.clipboard import ClipboardError, open_clipboard
from wavry.platform.wlclipboard import WlClipboardSync, watch_supported
from wavry.testing.sway import HeadlessSway, SwayError

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "sway", "wl-copy", "wl-paste"], capture_output=True).returncode != 0,
    reason="sway and wl-clipboard are needed",
)


@pytest.fixture(scope="module")
def sway() -> Iterator[HeadlessSway]:
    try:
        s = HeadlessSway().start()
    except SwayError as exc:
        pytest.skip(f"headless sway does not run here: {exc}")
    try:
        yield s
    finally:
        s.stop()


def _env(sway: HeadlessSway) -> dict[str, str]:
    return dict(os.environ, **sway.env())


def _paste(sway: HeadlessSway) -> str:
    r = subprocess.run(["wl-paste", "--no-newline"], env=_env(sway), capture_output=True, timeout=5)
    return r.stdout.decode()


def _copy(sway: HeadlessSway, text: str) -> None:
    subprocess.run(["wl-copy"], input=text.encode(), env=_env(sway), check=True, timeout=5)


def _wait(seen: list[str], text: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in seen:
            return True
        time.sleep(0.01)
    return False


def test_backend_both_ways_change_driven_no_echo(sway: HeadlessSway) -> None:
    assert watch_supported(_env(sway))  # sway has wlr-data-control: change-driven
    seen: list[str] = []
    sync = WlClipboardSync(seen.append, sway.wayland_display, sway.runtime_dir).start()
    try:
        assert sync.mode == "watch"
        time.sleep(0.3)
        _copy(sway, "copied by another Wayland client")  # local change → on_local_change
        assert _wait(seen, "copied by another Wayland client"), seen
        assert sync.set_remote_text("from the peer ✓")  # peer → local
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _paste(sway) != "from the peer ✓":
            time.sleep(0.05)
        assert _paste(sway) == "from the peer ✓"
        assert sync.owns_clipboard
        time.sleep(0.5)
        assert "from the peer ✓" not in seen  # our own copy is not a local change: no echo
        big = "wayland " * 100_000  # 800 kB
        _copy(sway, big)
        assert _wait(seen, big, 10)
        assert not sync.owns_clipboard  # another client took the selection
        assert sync.stats.sent == 2 and sync.stats.applied == 1
    finally:
        sync.close()
    assert not sync.running


def test_backend_oversize_reported_not_sent(sway: HeadlessSway) -> None:
    seen: list[str] = []
    sizes: list[int] = []
    sync = WlClipboardSync(
        seen.append, sway.wayland_display, sway.runtime_dir, max_bytes=1000,
        on_too_large=sizes.append,
    ).start()  # fmt: skip
    try:
        time.sleep(0.3)
        _copy(sway, "z" * 5000)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not sizes:
            time.sleep(0.02)
        assert sizes == [5000] and seen == []
        assert sync.stats.too_large == 1
        assert not sync.set_remote_text("w" * 1001)
    finally:
        sync.close()


def test_polling_fallback_works_too(sway: HeadlessSway) -> None:
    seen: list[str] = []
    sync = WlClipboardSync(seen.append, sway.wayland_display, sway.runtime_dir, poll=True).start()
    try:
        assert sync.mode == "poll"
        _copy(sway, "polled text")
        assert _wait(seen, "polled text", 5)
    finally:
        sync.close()


def test_open_clipboard_picks_wayland_when_wayland_display_is_set(
    sway: HeadlessSway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLAND_DISPLAY", sway.wayland_display)
    monkeypatch.setenv("XDG_RUNTIME_DIR", sway.runtime_dir)
    monkeypatch.delenv("DISPLAY", raising=False)
    sync = open_clipboard(lambda _t: None)
    try:
        assert isinstance(sync, WlClipboardSync) and sync.mode == "watch"
    finally:
        sync.close()
    monkeypatch.delenv("WAYLAND_DISPLAY")
    with pytest.raises(ClipboardError):
        open_clipboard(lambda _t: None)


@pytest.mark.skipif(
    subprocess.run(["which", "Xvfb"], capture_output=True).returncode != 0,
    reason="Xvfb is needed for the host side",
)
def test_session_host_x11_client_wayland_both_ways(sway: HeadlessSway, tmp_path: Any) -> None:
    from wavry.platform.clipboard import ClipboardSync
    from wavry.platform.xvfb import XvfbServer

    a = XvfbServer(640, 480).start()
    host = client = None
    lines: list[str] = []
    try:
        env_a = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "h"), PYTHONUNBUFFERED="1")
        env_a.update(a.env())
        host = subprocess.Popen(
            [sys.executable, "-m", "wavry", "host", "--listen", "127.0.0.1:0", "--trust", "any",
             "--source", "x11", "--display", a.display, "--fps", "30"],
            env=env_a, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert host.stdout is not None
        port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and port is None:
            line = host.stdout.readline()
            lines.append(line)
            if m := re.search(r"listening on udp://127\.0\.0\.1:(\d+)", line):
                port = m.group(1)
        assert port, "".join(lines)
        threading.Thread(target=lambda: lines.extend(host.stdout), daemon=True).start()  # type: ignore[union-attr,arg-type]
        env_c = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "c"), PYTHONUNBUFFERED="1",
                     SDL_VIDEODRIVER="offscreen", **sway.env())  # fmt: skip
        env_c.pop("DISPLAY", None)
        client = subprocess.Popen(
            [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{port}", "--seconds", "60"],
            env=env_c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        err: list[str] = []
        threading.Thread(target=lambda: err.extend(client.stderr), daemon=True).start()  # type: ignore[union-attr,arg-type]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("clipboard sync on" in e for e in err):
            time.sleep(0.05)
        assert any("clipboard sync on (watch)" in e for e in err), "".join(err)
        time.sleep(1.5)
        seen_a: list[str] = []
        on_a = ClipboardSync(seen_a.append, a.display, str(a.auth_file)).start()
        try:
            _copy(sway, "copied on the Wayland client")  # an ordinary Wayland app copies
            assert _wait(seen_a, "copied on the Wayland client", 10), "".join(err + lines)
            assert on_a.set_remote_text("copied on the X11 host")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _paste(sway) != "copied on the X11 host":
                time.sleep(0.05)
            assert _paste(sway) == "copied on the X11 host", "".join(err + lines)
            time.sleep(1.0)
            assert on_a.owns_clipboard  # no echo back to the host
        finally:
            on_a.close()
    finally:
        for p in (client, host):
            if p is not None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        a.stop()
