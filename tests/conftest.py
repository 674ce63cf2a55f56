"""Shared helpers for tests that run real `wavry` processes (fixture `proc`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

WAVRY = [sys.executable, "-m", "wavry"]


def env_for(home: Path) -> dict[str, str]:
    return dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def host_process(home: Path, *args: str) -> Iterator[tuple[int, list[str]]]:
    port = free_udp_port()
    proc = subprocess.Popen(
        [*WAVRY, "host", "--listen", f"127.0.0.1:{port}", *args],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on udp://" in line:
            break
    else:
        proc.kill()
        raise AssertionError("host did not start: " + "".join(lines))
    try:
        yield port, lines
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        lines.append(out)


HOST_ARGS = (
    "--trust", "any", "--source", "synthetic", "--size", "320x240", "--fps", "30",
    "--bitrate-kbps", "20000", "--file-share", "0.3",
)  # fmt: skip


@pytest.fixture
def proc() -> SimpleNamespace:
    """`wavry` process helpers: WAVRY, HOST_ARGS, env_for, free_udp_port, host_process."""
    return SimpleNamespace(
        WAVRY=WAVRY,
        HOST_ARGS=HOST_ARGS,
        env_for=env_for,
        free_udp_port=free_udp_port,
        host_process=host_process,
    )
