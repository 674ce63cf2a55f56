"""Opening a stream from the app: a `wavry connect` child process with the chosen options, which
shows the picture in its own SDL window and reports back over JSON lines on a pipe
(``--events-json -``, protocol in :mod:`wavry.client.eventlines`): state, live figures, the
pairing-code and changed-identity questions (answered on its stdin), errors and the summary.

Why a child process and not the client runtime in-process next to Qt: the stream's event loop,
decode thread and SDL window thread then never share a GIL or an event loop with the app's
widgets (a repaint or a modal dialog cannot delay a frame), the SDL window and Qt never share one
X connection or event pump, and a crash in a codec or video driver takes the stream down, not
the app. The process is the same `wavry connect` users run, so the app adds no second path.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from wavry.client.eventlines import answer_line, parse_line

__all__ = ["StreamController", "StreamError"]

log = logging.getLogger("wavry.desktop.stream")
STOP_GRACE_MS = 3000
STDERR_KEEP = 40


class StreamError(Exception):
    """A stream could not be opened; the message is for the user."""


class StreamController(QObject):
    """One stream at a time. Signals: ``state_changed(state, detail)``, ``connected(dict)``,
    ``stats(dict)`` (once a second), ``ask_pairing(dict)`` / ``ask_identity(dict)`` (answer with
    :meth:`answer_pairing` / :meth:`answer_identity`), ``said(str)``, ``ended(str)`` ("" when
    the session ended normally, else why it failed)."""

    state_changed = Signal(str, str)
    connected = Signal(dict)
    stats = Signal(dict)
    ask_pairing = Signal(dict)
    ask_identity = Signal(dict)
    said = Signal(str)
    ended = Signal(str)

    def __init__(self, program: list[str] | None = None, env: dict[str, str] | None = None):
        super().__init__()
        self.env = env or {}  # set in the child's environment (tests: its config directory)
        #: how to run `wavry` (this interpreter: works without the command on PATH)
        self.program = program or [sys.executable, "-m", "wavry"]
        self.proc: QProcess | None = None
        self.target = ""
        self.label = ""
        self.state = "idle"
        self.info: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.error = ""
        self.stderr_tail: list[str] = []
        self._out = b""
        self._err = b""
        self._stopping = False
        self._kill = QTimer(self)
        self._kill.setSingleShot(True)
        self._kill.timeout.connect(self._force_stop)

    @property
    def running(self) -> bool:
        return self.proc is not None

    def command(self, target: str, host_id: str | None, extra: list[str]) -> list[str]:
        # the live figures come as events: no live lines besides
        args = [*self.program, "connect", target, "--events-json", "-", "--no-live-stats"]
        if host_id:
            args += ["--host-id", host_id]
        return args + extra

    def start(
        self,
        target: str,
        host_id: str | None = None,
        label: str = "",
        extra: list[str] | None = None,
    ) -> None:
        """Open a stream to ``target`` (HOST[:PORT] or an account host's name). Raises
        StreamError when one is already open."""
        if self.proc is not None:
            raise StreamError(f"a stream to {self.label or self.target} is open: disconnect first")
        args = self.command(target, host_id, extra or [])
        self.target, self.label = target, label or target
        self.info, self.summary, self.error, self.stderr_tail = {}, {}, "", []
        self._out = self._err = b""
        self._stopping = False
        proc = QProcess(self)
        if self.env:
            penv = QProcessEnvironment.systemEnvironment()
            for key, value in self.env.items():
                penv.insert(key, value)
            proc.setProcessEnvironment(penv)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        proc.readyReadStandardOutput.connect(self._read_out)
        proc.readyReadStandardError.connect(self._read_err)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._failed_to_start)
        self.proc = proc
        log.info("starting %s", " ".join(args))
        self._set_state("connecting", self.label)
        proc.start(args[0], args[1:])

    # ---- answers and control ---------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.proc is not None and self.proc.state() == QProcess.ProcessState.Running:
            self.proc.write(data)

    def answer_pairing(self, code: str | None) -> None:
        self._write(answer_line("pairing_code", code=code))

    def answer_identity(self, trust: bool) -> None:
        self._write(answer_line("identity", trust=trust))

    def stop(self) -> None:
        """Ask the stream to end (it closes its session and window); forced after 3 s."""
        if self.proc is None or self._stopping:
            return
        self._stopping = True
        self._write(answer_line("stop"))
        self.proc.closeWriteChannel()
        self._kill.start(STOP_GRACE_MS)

    def _force_stop(self) -> None:
        if self.proc is not None:
            log.warning("the stream did not end in time; terminating it")
            self.proc.terminate()
            if not self.proc.waitForFinished(1000):
                self.proc.kill()

    # ---- what the child says ---------------------------------------------------------------

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.state_changed.emit(state, detail)

    def _read_out(self) -> None:
        if self.proc is None:
            return
        self._out += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for raw in lines:
            event = parse_line(raw)
            if event is not None:
                self._on_event(event)

    def _on_event(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        if kind == "state":
            self._set_state(str(e.get("state", "")), str(e.get("detail", "")))
        elif kind == "connected":
            self.info = e
            self.connected.emit(e)
        elif kind == "stats":
            self.stats.emit(e)
        elif kind == "ask_pairing_code":
            self.ask_pairing.emit(e)
        elif kind == "ask_identity":
            self.ask_identity.emit(e)
        elif kind == "say":
            self.said.emit(str(e.get("text", "")))
        elif kind == "error":
            self.error = str(e.get("message", "")) or self.error
        elif kind == "ended":
            self.summary = e.get("summary") or {}
            if e.get("ended"):
                self.error = f"session ended: {e['ended']}"

    def _read_err(self) -> None:
        if self.proc is None:
            return
        self._err += bytes(self.proc.readAllStandardError().data())
        *lines, self._err = self._err.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                self.stderr_tail = [*self.stderr_tail[-(STDERR_KEEP - 1) :], text]

    def _why_failed(self, code: int) -> str:
        if self.error:
            return self.error
        for line in reversed(self.stderr_tail):
            if line.startswith("error: "):
                return line.removeprefix("error: ")
        last = self.stderr_tail[-1] if self.stderr_tail else "no message"
        return f"the stream ended unexpectedly (exit status {code}): {last}"

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_out()
        self._read_err()
        self._kill.stop()
        crashed = status == QProcess.ExitStatus.CrashExit and not self._stopping
        failed = crashed or (code not in (0, 130) and not self._stopping)
        why = self._why_failed(code) if failed else ""
        if crashed and not self.error:
            why = f"the stream process crashed: {self.stderr_tail[-1:] or 'no message'}"
        self._done(why)

    def _failed_to_start(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._done(
                f"cannot start `wavry connect` ({self.program[0]}): not found or not runnable"
            )

    def _done(self, why: str) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.deleteLater()
        self._set_state("closed", why)
        self.ended.emit(why)
