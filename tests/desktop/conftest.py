"""The desktop app under test: Qt on the offscreen platform (pytest-qt's QApplication), the app's
asyncio loop (qasync), a config directory per app, and real back-ends — a `wavry gateway`
process, `wavry host` processes, a Secret Service (gnome-keyring) on a private D-Bus bus.

Screenshots of the views go to $WAVRY_DESKTOP_SCREENSHOTS when set (scripts/desktop-screenshots.py
sets it to docs/desktop/), else to the test's tmp directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHOTS_ENV = "WAVRY_DESKTOP_SCREENSHOTS"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


#: reaching account hosts needs wavry.connectivity (the reach work)
REACH = pytest.mark.skipif(not _has("wavry.connectivity"), reason="needs wavry.connectivity")


def click(widget: Any) -> None:
    """Press a button the way a user's click ends (its clicked signal, synchronously; no nested
    Qt event processing under the running asyncio loop)."""
    assert widget.isEnabled(), f"{widget.text()!r} is disabled"
    assert widget.isVisible(), f"{widget.text()!r} is not shown"
    widget.click()


def type_into(edit: Any, text: str) -> None:
    assert edit.isEnabled() and edit.isVisible(), f"{edit.accessibleName()!r} cannot be typed in"
    edit.setFocus()
    edit.setText(text)


def run(desk: Any, coro: Any, timeout: float = 30.0) -> Any:
    """Run ``coro`` on the app's loop (Qt events are processed meanwhile). Tests drive the
    views from such coroutines, so every task the app starts runs on a running loop."""
    return desk.loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)


def wait_for(desk: Any, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    return run(desk, until(predicate, timeout, what), timeout + 5)


def settle(desk: Any, seconds: float = 0.2) -> None:
    run(desk, asyncio.sleep(seconds))


def shot_dir(tmp_path: Path) -> Path:
    target = os.environ.get(SHOTS_ENV)
    path = Path(target) if target else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Save a PNG of a widget (QWidget.grab) as NAME.png; returns the path."""
    where = shot_dir(tmp_path)

    def save(widget: Any, name: str) -> Path:
        path = where / f"{name}.png"
        assert widget.grab().save(str(path)), f"cannot save {path}"
        return path

    return save


class Desks:
    """Apps built in one test (one loop); closed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[Any] = []
        self.loop: Any = None  # the loop to build on (else the first app's)

    def __call__(
        self, name: str = "a", size: tuple[int, int] = (1280, 800), tray: bool = False
    ) -> Any:
        from wavry.desktop.app import build

        home = self.tmp_path / f"{name}-config"
        home.mkdir(exist_ok=True)
        loop = self.loop or (self.made[0].loop if self.made else None)
        desk = build(home, tray=tray, loop=loop)
        desk.home = home
        desk.quit_calls = []
        desk.window.on_quit = lambda: desk.quit_calls.append(time.monotonic())
        desk.window.resize(*size)
        self.made.append(desk)
        return desk

    def close(self) -> None:
        if not self.made:
            return
        loop = self.loop or self.made[0].loop

        async def stop_all() -> None:
            for d in self.made:
                d.stream.stop()
                await d.sharing.stop()
            for d in self.made:
                await until(lambda d=d: not d.stream.running, 10, "the stream to end")

        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.wait_for(stop_all(), 20))
        for d in self.made:
            if d.first_run is not None:
                d.first_run.done(0)
            d.window.quitting = True  # hidden, not closed: closing quits the application
            d.window.hide()
            d.release()
        loop.run_until_complete(asyncio.sleep(0.05))
        from wavry.desktop.app import finish_tasks

        finish_tasks(loop)
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def desks(qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desks]:
    """``desks(name)`` builds an app with its own config directory (a device of its own)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "unused-config"))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # the file, unless a test
    monkeypatch.delenv("DISPLAY", raising=False)  # brings its own Secret Service or X server
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    made = Desks(tmp_path)
    yield made
    made.close()


@pytest.fixture
def desk(desks: Desks) -> Any:
    return desks("a")


# ---------------------------------------------------------------------------- back-ends


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Any]:
    from tests.gateway.conftest import launch_gateway

    gw = launch_gateway(tmp_path / "gateway-data", timeout=90)  # a busy machine
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def secret_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real Secret Service: gnome-keyring-daemon on a private D-Bus session bus, its login
    keyring unlocked; DBUS_SESSION_BUS_ADDRESS points at it."""
    if shutil.which("gnome-keyring-daemon") is None:
        pytest.skip("gnome-keyring is not installed (scripts/setup.sh installs it)")
    base = tmp_path / "keyring"
    runtime = base / "run"
    runtime.mkdir(parents=True)
    runtime.chmod(0o700)
    env = dict(os.environ, HOME=str(base), XDG_DATA_HOME=str(base / "data"),
               XDG_RUNTIME_DIR=str(runtime))  # fmt: skip
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1", "--nopidfile"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    assert bus.stdout is not None
    address = bus.stdout.readline().strip()
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    subprocess.run(  # exits with the bus
        ["gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize"],
        input="test-password", capture_output=True, text=True, env=env, timeout=20, check=True,
    )  # fmt: skip
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    try:
        yield address
    finally:
        bus.terminate()
        bus.wait(5)


class HostProcess:
    """A real `wavry host` (synthetic picture) with its output collected as it comes."""

    def __init__(self, home: Path, port: int, *args: str) -> None:
        import sys
        import threading

        self.home, self.port = home, port
        self.lines: list[str] = []
        env = dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1")
        env.pop("DISPLAY", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wavry", "host", "--listen", f"127.0.0.1:{port}",
             "--source", "synthetic", "--size", "320x240", "--fps", "30", "--audio", "off",
             *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        while not any("listening on udp://" in ln for ln in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("wavry host did not start:\n" + "".join(self.lines))
            time.sleep(0.05)
        self.wavry_id = next(ln.split()[-1] for ln in self.lines if "Wavry ID:" in ln)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def code(self) -> str | None:
        """The last pairing code it printed (6 digits)."""
        import re

        for line in reversed(self.lines):
            m = re.search(r"Pairing code: (\d{3}) (\d{3})", line)
            if m:
                return m.group(1) + m.group(2)
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Callable[..., HostProcess]]:
    """``hosts(name, port=None, *args)`` starts a `wavry host` with a config of its own."""
    from tests.conftest import free_udp_port

    made: list[HostProcess] = []

    def start(name: str = "host", port: int | None = None, *args: str) -> HostProcess:
        h = HostProcess(tmp_path / f"{name}-home", port or free_udp_port(), *args)
        made.append(h)
        return h

    yield start
    for h in made:
        h.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a coroutine of the app left to the garbage collector (its clean-up cannot run without
    # the loop) prints a traceback when the app quits: here it fails the test instead
    for item in items:
        if "tests/desktop/" in str(item.path):
            item.add_marker(
                pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
            )
