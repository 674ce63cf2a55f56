"""Shared helpers for tests that run real `wavry` processes (fixture `proc`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from wavry.runtime.processes import WAVRY, HostProcess, free_udp_port, running_host, wavry_env


def env_for(home: Path) -> dict[str, str]:
    return wavry_env(home)


class HostLines(Sequence[str]):
    """A host's output lines as they arrive (each ending in a newline, like the pipe's)."""

    def __init__(self, host: HostProcess) -> None:
        self._host = host

    def _now(self) -> list[str]:
        return [line + "\n" for _, line in self._host.lines]

    def __getitem__(self, i: Any) -> Any:
        return self._now()[i]

    def __len__(self) -> int:
        return len(self._host.lines)


@contextmanager
def host_process(home: Path, *args: str) -> Iterator[tuple[int, HostLines]]:
    """A `wavry host` on 127.0.0.1 (any free port) with its own config directory: yields the
    port and its output lines (live; complete once the host has stopped)."""
    with running_host(args, wavry_env(home)) as host:
        yield host.port, HostLines(host)


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
