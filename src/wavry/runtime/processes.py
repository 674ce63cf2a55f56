"""The one way to run a `wavry` command as a child process and to start a `wavry host` and wait
for it: used by `wavry demo`, the benchmarks and the tests (docs/architecture.md).

A host is ready when it prints its banner line ``RIFT host listening on udp://ADDR:PORT``;
:func:`parse_banner` reads that line (and the ``Wavry ID:`` line) wherever a caller reads a
host's output itself (the demo does, asynchronously).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = [
    "LISTENING",
    "WAVRY",
    "HostProcess",
    "WavryProcess",
    "free_udp_port",
    "parse_banner",
    "parse_wavry_id",
    "running_host",
    "wavry_env",
]

WAVRY = [sys.executable, "-m", "wavry"]
LISTENING = re.compile(r"listening on udp://\[?([^\]\s]+?)\]?:(\d+)\s*$")
_WAVRY_ID = re.compile(r"Wavry ID:\s+([A-Za-z0-9_-]{43})\b")


def parse_banner(line: str) -> tuple[str, int] | None:
    """(address, port) from a host's `listening on udp://…` line, else None."""
    m = LISTENING.search(line.rstrip())
    return (m.group(1), int(m.group(2))) if m else None


def parse_wavry_id(line: str) -> str | None:
    m = _WAVRY_ID.search(line)
    return m.group(1) if m else None


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free right now (prefer ``--listen ADDR:0`` and the banner where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wavry_env(
    config_home: Path | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment, unbuffered, with its own XDG config directory."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if config_home is not None:
        env["XDG_CONFIG_HOME"] = str(config_home)
    env.update(extra or {})
    return env


class WavryProcess:
    """A `wavry …` child whose output lines (with their arrival wall time) a thread collects.

    ``merge``: stderr goes into the same line list as stdout (else it is collected apart, in
    ``err_lines``)."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        merge: bool = True,
        cwd: Path | None = None,
    ) -> None:
        self.lines: list[tuple[float, str]] = []
        self.err_lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            [*WAVRY, *args],
            env=dict(env) if env is not None else wavry_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self._changed = threading.Condition()
        streams: list[tuple[IO[str] | None, list[tuple[float, str]]]] = [
            (self.proc.stdout, self.lines)
        ]
        if not merge:
            streams.append((self.proc.stderr, self.err_lines))
        self._threads = [
            threading.Thread(target=self._drain, args=(s, sink), daemon=True) for s, sink in streams
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self, stream: IO[str] | None, sink: list[tuple[float, str]]) -> None:
        if stream is None:
            return
        for line in stream:
            with self._changed:
                sink.append((time.time(), line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_line(self, pattern: str | re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """The first output line matching ``pattern`` (waiting up to ``timeout`` seconds), or
        None when it did not come (or the process ended without it)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for _, line in self.lines[seen:]:
                    if m := rx.search(line):
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    return None
                self._changed.wait(min(left, 0.2))

    def first_time(self, pattern: str) -> float | None:
        rx = re.compile(pattern)
        return next((t for t, line in self.lines if rx.search(line)), None)

    def text(self) -> str:
        return "\n".join(line for _, line in [*self.lines, *self.err_lines])

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(2)
        return self.proc.returncode


class HostProcess(WavryProcess):
    """`wavry host …`, ready once its banner said where it listens."""

    address: tuple[str, int]
    wavry_id: str | None

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def target(self) -> str:
        """What `wavry connect` takes to reach this host."""
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def start_host(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    listen: str = "127.0.0.1:0",
    timeout: float = 30.0,
    merge: bool = True,
) -> HostProcess:
    """Start `wavry host --listen LISTEN ARGS…` and wait for its banner (RuntimeError with the
    host's output when it does not start)."""
    p = HostProcess(["host", "--listen", listen, *args], env, merge=merge)
    m = p.wait_line(LISTENING, timeout)
    if m is None:
        p.stop(5)
        raise RuntimeError("wavry host did not start:\n" + p.text()[-3000:])
    p.address = (m.group(1), int(m.group(2)))
    p.wavry_id = next((i for _, line in p.lines if (i := parse_wavry_id(line))), None)
    return p


@contextmanager
def running_host(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    listen: str = "127.0.0.1:0",
    timeout: float = 30.0,
    merge: bool = True,
) -> Iterator[HostProcess]:
    """`start_host` as a context manager: the host is stopped on exit."""
    p = start_host(args, env, listen=listen, timeout=timeout, merge=merge)
    try:
        yield p
    finally:
        p.stop()
