"""Processes of `wavry bench peers`: start with a log file, stop by the pid we started (its whole
process group), CPU time of a process and all its descendants from /proc, free TCP ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["Proc", "free_tcp_port", "tree_cpu_s", "wait_tcp"]

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime in seconds) of one process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text[text.rindex(")") + 2 :].split()
    return int(f[1]), (int(f[11]) + int(f[12])) / _CLK_TCK


def tree_cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by ``pids`` and every live descendant."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                parent[int(entry.name)], cpu[int(entry.name)] = st
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total = 0.0
    todo = [p for p in pids if p in cpu]
    seen: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_tcp(host: str, port: int, timeout_s: float, netns: str | None = None) -> bool:
    """True once something accepts TCP connections on host:port (inside ``netns`` if given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if netns is None:
            with socket.socket() as s:
                s.settimeout(0.5)
                try:
                    s.connect((host, port))
                    return True
                except OSError:
                    pass
        else:
            probe = subprocess.run(
                ["ip", "netns", "exec", netns, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
                capture_output=True,
                timeout=5,
            )
            if probe.returncode == 0:
                return True
        time.sleep(0.1)
    return False


class Proc:
    """A child process in its own process group, output to a log file (or a pipe for stdout)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        stdout_pipe: bool = False,
        cwd: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._log: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives with the proc)
            prefix=f"wavry-peers-{name}-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.popen: subprocess.Popen[Any] = subprocess.Popen(
            self.argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log,
            start_new_session=True,
            text=stdout_pipe,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 600) -> str:
        self._log.flush()
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return " | ".join(line for line in text[-chars:].splitlines() if line.strip())
        return ""

    def finish(self, grace_s: float = 5.0) -> str:
        """SIGTERM the process and return what it still wrote to its stdout pipe."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
        try:
            out, _ = self.popen.communicate(timeout=grace_s)
        except (subprocess.TimeoutExpired, ValueError):
            return ""
        return out or ""

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the process group we started, SIGKILL what is left after ``grace_s``."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace_s)
        # children that outlived their parent stay in its group: kill the group in any case
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        if self.popen.stdout is not None and not self.popen.stdout.closed:
            self.popen.stdout.close()
        self._log.close()

    def remove_log(self) -> None:
        with contextlib.suppress(OSError):
            self.log_path.unlink()
