"""`wavry desktop`: build the app (services, views, window) and run it on one asyncio loop that is
Qt's (qasync).

Nothing a runtime raises reaches the terminal as a traceback: expected errors become a line in
the view that caused them, anything else is logged to the app's log file (with its traceback)
and shown as a line in the status bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from wavry.desktop.errors import describe, log_file

__all__ = ["Desktop", "build", "run"]

log = logging.getLogger("wavry.desktop")


@dataclass
class Desktop:
    """The app's parts (tests build one with :func:`build` and drive it)."""

    app: Any  # QApplication
    loop: asyncio.AbstractEventLoop
    prefs: Any
    account: Any
    sharing: Any
    stream: Any
    window: Any
    first_run: Any = None

    def start(self) -> None:
        """Show the window, and the first-run dialog over it on a fresh configuration."""
        self.window.show()
        if not self.prefs.desktop().set_up:
            from wavry.desktop.firstrun import FirstRunDialog

            self.first_run = FirstRunDialog(self.prefs, self.account, self.window)
            self.first_run.completed.connect(self.window.computers.refresh)
            self.first_run.open()

    def release(self) -> None:
        """Stop the timers and let Qt delete the parts (sharing and the stream are stopped
        before: :meth:`MainWindow.quit`)."""
        self.account.stop_polling()
        self.window.computers.stop_searching()
        for part in (self.account, self.sharing, self.stream, self.window):
            part.deleteLater()


def _log_to_file() -> None:
    """The app's own log (what went wrong, with tracebacks) in $XDG_STATE_HOME/wavry."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        # the file gets INFO; stderr keeps the --log-level the user asked for (default warning)
        for h in root.handlers:
            if h is not handler and h.level == logging.NOTSET:
                h.setLevel(root.level if root.level != logging.NOTSET else logging.WARNING)
        root.setLevel(logging.INFO)


def make_loop(app: Any) -> asyncio.AbstractEventLoop:
    """The app's asyncio loop: Qt's (qasync), made the current one."""
    import PySide6.QtCore  # noqa: F401 (first: qasync takes the Qt binding already imported)
    import qasync  # type: ignore[import-untyped]

    loop: asyncio.AbstractEventLoop = qasync.QEventLoop(app)
    # plain threads for blocking work (the doctor's probes): qasync's own QThread pool aborts
    # the process when one of its threads is still running as Python exits
    loop.set_default_executor(ThreadPoolExecutor(8, thread_name_prefix="wavry-desktop"))
    asyncio.set_event_loop(loop)
    return loop


def build(
    config_home: Path | None = None,
    tray: bool | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Desktop:
    """The app's objects on a QApplication and a qasync loop (``loop``: one made before, for a
    second app in one process). ``config_home`` stands for $XDG_CONFIG_HOME (tests: two apps,
    two devices); the `wavry connect` children get it too."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from wavry.config import config_file
    from wavry.desktop.accounts import AccountService
    from wavry.desktop.prefs import Prefs
    from wavry.desktop.sharing import SharingController
    from wavry.desktop.streaming import StreamController
    from wavry.desktop.style import apply_style
    from wavry.desktop.window import MainWindow
    from wavry.store import load_or_create_identity

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication([sys.argv[0] if sys.argv else "wavry"])
    app.setApplicationName("Wavry")
    app.setOrganizationName("Wavry")
    app.setDesktopFileName("wavry")
    app.setQuitOnLastWindowClosed(False)
    apply_style(app)
    if loop is None:
        loop = make_loop(app)
    config_dir = None if config_home is None else config_home / "wavry"
    prefs = Prefs(config_file() if config_dir is None else config_dir / "config.toml")
    identity = load_or_create_identity(config_dir)
    account = AccountService(config_dir)
    sharing = SharingController(prefs, config_dir, account)
    env = {} if config_home is None else {"XDG_CONFIG_HOME": str(config_home)}
    stream = StreamController(env=env)
    window = MainWindow(prefs, account, sharing, stream, identity.wavry_id, tray=tray)
    return Desktop(app, loop, prefs, account, sharing, stream, window)


def run(started: float | None = None) -> int:
    """Run the app until it quits; the exit status."""
    _log_to_file()
    desktop = build()
    window = desktop.window

    def unexpected(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            window.quit()
            return
        window.statusBar().showMessage(describe(exc.with_traceback(tb)), 20000)

    def loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if exc is None:
            log.warning("event loop: %s", context.get("message"))
            return
        window.statusBar().showMessage(describe(exc), 20000)

    sys.excepthook = unexpected  # exceptions in Qt slots: a line in the app, the rest in the log
    desktop.loop.set_exception_handler(loop_error)
    _quit_on_signals(desktop)
    desktop.start()
    if started is not None:
        log.info("window shown %.2f s after start", time.monotonic() - started)
    try:
        desktop.loop.run_forever()
    finally:
        finish_tasks(desktop.loop)
        desktop.loop.close()
    return 0


def finish_tasks(loop: asyncio.AbstractEventLoop, timeout: float = 5.0) -> None:
    """Cancel what the app still has running (a LAN search, a sign-in) and let it clean up
    on the loop before the loop closes. Left alone, such a coroutine is closed later by the
    garbage collector, its clean-up (closing the mDNS socket) cannot run without a loop, and
    Python prints "Exception ignored in …" with a traceback on the way out."""
    if loop.is_closed():
        return
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    for t in pending:
        t.cancel()
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.wait(pending, timeout=timeout))


def _quit_on_signals(desktop: Desktop) -> None:
    """SIGINT/SIGTERM end the app like its Quit (sharing stopped, the stream closed)."""
    import signal

    def handler(_signum: int, _frame: Any) -> None:
        desktop.loop.call_soon_threadsafe(desktop.window.quit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    # Python runs signal handlers only between bytecodes: a timer wakes it while Qt waits
    from PySide6.QtCore import QTimer

    timer = QTimer(desktop.window)
    timer.setInterval(250)
    timer.timeout.connect(lambda: None)
    timer.start()
