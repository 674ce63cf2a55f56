"""Text clipboard sync on Wayland with wl-clipboard (``wl-paste --watch`` / ``wl-copy``).

Same interface as the X11 :class:`wavry.platform.clipboard.ClipboardSync`:

* **local → peer**: ``wl-paste --watch`` runs a small shell command for every selection change
  (change-driven, through the compositor's wlr-data-control / ext-data-control protocol, so no
  focused window is needed). The command writes the new text base64-encoded on one line of a
  pipe we read in a daemon thread; ``on_local_change(text)`` is called *from that thread*.
  Where ``--watch`` does not work (a compositor without data-control) the backend polls
  ``wl-paste`` every ``POLL_S`` instead (``mode == "poll"``).
* **peer → local**: ``set_remote_text(text)`` runs ``wl-copy --foreground`` with the text on
  stdin; the process serves the selection until another client takes it (then it exits) or until
  :meth:`close` ends it.

No loops: text equal to the last text synced in either direction is never sent (the watch fires
for our own ``wl-copy`` too, with exactly that text). Texts over ``max_bytes`` are skipped,
counted, and reported through ``on_too_large(size)``. Contents are never logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable

from wavry.platform.clipboard import MAX_TEXT_BYTES, ClipboardError, ClipboardStats
from wavry.platform.probe import ProbeResult

__all__ = ["POLL_S", "WlClipboardSync", "probe", "watch_supported"]

log = logging.getLogger(__name__)

POLL_S = 0.25
TEXT_TYPE = "text/plain;charset=utf-8"
# one line per change: the selection's text as base64 (an empty line when it is not text)
_WATCH_CMD = "base64 -w0; echo"


def _env(wayland_display: str | None, runtime_dir: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if wayland_display:
        env["WAYLAND_DISPLAY"] = wayland_display
    if runtime_dir:
        env["XDG_RUNTIME_DIR"] = runtime_dir
    return env


def watch_supported(env: dict[str, str], timeout: float = 2.0) -> bool:
    """True when ``wl-paste --watch`` can run here (the compositor offers data-control):
    without it wl-paste exits at once with an error, with it it keeps watching."""
    try:
        p = subprocess.Popen(
            ["wl-paste", "--watch", "true"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return False
    try:
        p.wait(min(timeout, 0.5))
        return False  # exited: no data-control (or no compositor)
    except subprocess.TimeoutExpired:
        return True
    finally:
        if p.poll() is None:
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(2)
            if p.poll() is None:
                p.kill()
                p.wait()


def probe(wayland_display: str | None = None, runtime_dir: str | None = None) -> ProbeResult:
    """Whether the Wayland clipboard backend can run (wl-clipboard installed, compositor up)."""
    env = _env(wayland_display, runtime_dir)
    if not env.get("WAYLAND_DISPLAY"):
        return ProbeResult(
            "clipboard", False, "WAYLAND_DISPLAY is not set", "run in a Wayland session"
        )
    if shutil.which("wl-paste") is None or shutil.which("wl-copy") is None:
        return ProbeResult(
            "clipboard", False, "wl-clipboard is not installed", "apt install wl-clipboard"
        )
    if watch_supported(env):
        return ProbeResult("clipboard", True, "wl-clipboard, change-driven (wl-paste --watch)")
    return ProbeResult(
        "clipboard",
        True,
        f"wl-clipboard, polling every {POLL_S * 1000:.0f} ms (no data-control protocol)",
        "use a compositor with wlr-data-control for change-driven sync",
    )


class WlClipboardSync:
    """Two-way text clipboard sync for one Wayland display (see module docstring)."""

    def __init__(
        self,
        on_local_change: Callable[[str], None],
        wayland_display: str | None = None,
        runtime_dir: str | None = None,
        *,
        max_bytes: int = MAX_TEXT_BYTES,
        on_too_large: Callable[[int], None] | None = None,
        poll: bool | None = None,
    ) -> None:
        self._on_local_change = on_local_change
        self._on_too_large = on_too_large
        self._env = _env(wayland_display, runtime_dir)
        self.display = self._env.get("WAYLAND_DISPLAY", "")
        self.max_bytes = max_bytes
        self.stats = ClipboardStats()
        self._force_poll = poll
        self.mode = ""
        self._lock = threading.Lock()
        self._last: str | None = None
        self._owned: str | None = None
        self._copy: subprocess.Popen[bytes] | None = None
        self._watch: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def owns_clipboard(self) -> bool:
        p = self._copy
        return p is not None and p.poll() is None

    def start(self) -> WlClipboardSync:
        if self._thread is not None:
            return self
        if not self.display:
            raise ClipboardError("WAYLAND_DISPLAY is not set")
        if shutil.which("wl-paste") is None or shutil.which("wl-copy") is None:
            raise ClipboardError("wl-clipboard (wl-paste, wl-copy) is not installed")
        poll = self._force_poll if self._force_poll is not None else not watch_supported(self._env)
        # what is on the clipboard already is not a change (the X11 backend does not send it
        # either); wl-paste --watch reports it at start, and the duplicate check drops it then
        with contextlib.suppress(OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
            r = subprocess.run(
                ["wl-paste", "--no-newline", "--type", "text"],
                env=self._env,
                capture_output=True,
                timeout=2,
            )
            if r.returncode == 0 and r.stdout:
                self._last = r.stdout.decode("utf-8")
        if poll:
            self.mode = "poll"
            target = self._run_poll
        else:
            self.mode = "watch"
            try:
                self._watch = subprocess.Popen(
                    [
                        "wl-paste",
                        "--no-newline",
                        "--type",
                        "text",
                        "--watch",
                        "sh",
                        "-c",
                        _WATCH_CMD,
                    ],
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError as exc:
                raise ClipboardError(f"cannot run wl-paste: {exc.strerror or exc}") from exc
            target = self._run_watch
        self._thread = threading.Thread(target=target, name="wavry-wlclipboard", daemon=True)
        self._thread.start()
        return self

    def set_remote_text(self, text: str) -> bool:
        """Make ``text`` (from the peer) the Wayland selection; callable from any thread."""
        try:
            data = text.encode("utf-8")
        except (UnicodeEncodeError, AttributeError):
            self._count("invalid")
            return False
        if len(data) > self.max_bytes:
            self._count("too_large")
            return False
        if self._thread is None or self._stop.is_set():
            return False
        with self._lock:
            if text == self._owned and self.owns_clipboard:
                self.stats.duplicates += 1
                return False
            self._last = text  # the watch will report it back: not a local change
            self._owned = text
            old, self._copy = self._copy, None
        self._end(old)
        try:
            p = subprocess.Popen(
                ["wl-copy", "--foreground", "--type", TEXT_TYPE],
                env=self._env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert p.stdin is not None
            p.stdin.write(data)
            p.stdin.close()
        except OSError as exc:
            self._count("errors")
            log.warning("clipboard: wl-copy failed: %s", type(exc).__name__)
            return False
        with self._lock:
            self._copy = p
        self._count("applied")
        log.debug("clipboard: remote text applied, %d bytes", len(data))
        return True

    def close(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        watch, self._watch = self._watch, None
        self._end(watch)
        with self._lock:
            copy, self._copy = self._copy, None
            self._owned = None
        self._end(copy)
        if thread is not None:
            thread.join(5.0)

    def __enter__(self) -> WlClipboardSync:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _end(p: subprocess.Popen[bytes] | None) -> None:
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p.stdout is not None:
            with contextlib.suppress(OSError):
                p.stdout.close()

    def _run_watch(self) -> None:
        p = self._watch
        assert p is not None and p.stdout is not None
        try:
            for line in p.stdout:
                if self._stop.is_set():
                    break
                line = line.strip()
                if not line:
                    self._count("invalid")  # not text (or empty)
                    continue
                try:
                    raw = base64.b64decode(line, validate=True)
                except (binascii.Error, ValueError):
                    self._count("invalid")
                    continue
                self._deliver(raw)
        except (OSError, ValueError):
            pass
        if not self._stop.is_set():
            log.warning("clipboard: wl-paste --watch ended")

    def _run_poll(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                r = subprocess.run(
                    ["wl-paste", "--no-newline", "--type", "text"],
                    env=self._env,
                    capture_output=True,
                    timeout=2,
                )
            except (OSError, subprocess.TimeoutExpired):
                self._count("timeouts")
                continue
            if r.returncode == 0 and r.stdout:
                self._deliver(r.stdout, quiet_duplicates=True)

    def _deliver(self, raw: bytes, quiet_duplicates: bool = False) -> None:
        if len(raw) > self.max_bytes:
            with self._lock:
                last = self._last
            if last is not None and raw == last.encode("utf-8"):
                return  # what was there at start (or what we set): not a change
            self._count("too_large")
            if self._on_too_large is not None:
                with contextlib.suppress(Exception):
                    self._on_too_large(len(raw))
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._count("invalid")
            return
        if not text:
            return
        with self._lock:
            if text == self._last:
                if not quiet_duplicates:
                    self.stats.duplicates += 1
                return
            self._last = text
        self._count("sent")
        log.debug("clipboard: local change, %d bytes", len(raw))
        try:
            self._on_local_change(text)
        except Exception as exc:
            self._count("errors")
            log.warning("clipboard: on_local_change failed: %s", type(exc).__name__)
