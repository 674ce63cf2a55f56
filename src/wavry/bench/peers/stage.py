"""What a system under test gets from `wavry bench peers`: the two displays, the network path,
a scratch directory; and what it hands back: its server and viewer processes."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wavry.bench.peers.procs import Proc
from wavry.platform.xvfb import XvfbServer

__all__ = ["NetPath", "NotRunnable", "Running", "Stage", "SystemUnderTest", "missing_tools"]


class NotRunnable(RuntimeError):
    """A system cannot run here (a piece is missing) or did not come up; the message says why."""


@dataclass(frozen=True)
class NetPath:
    """Where servers listen and viewers connect. Loopback: both in this namespace on 127.0.0.1.
    Bottleneck: the server side in namespace ``server_ns``, viewers in ``viewer_ns``, joined by
    the rate-limited, delayed link of :mod:`wavry.bench.peers.link`."""

    name: str
    server_addr: str = "127.0.0.1"
    server_ns: str | None = None
    viewer_ns: str | None = None
    #: the link's byte/packet/drop counters per direction (bottleneck only)
    counters: Callable[[], dict[str, Any]] | None = field(default=None, compare=False)

    def server_argv(self, argv: Sequence[str]) -> list[str]:
        return _in_ns(self.server_ns, argv)

    def viewer_argv(self, argv: Sequence[str]) -> list[str]:
        return _in_ns(self.viewer_ns, argv)


def _in_ns(ns: str | None, argv: Sequence[str]) -> list[str]:
    return list(argv) if ns is None else ["ip", "netns", "exec", ns, *argv]


@dataclass
class Stage:
    width: int
    height: int
    fps: int
    display_a: XvfbServer  # the animation; servers capture it
    display_b: XvfbServer  # viewers show the picture here; the grabber reads it
    path: NetPath
    workdir: Path  # scratch space for this system in this run (deleted afterwards)
    cache_dir: Path  # kept between runs (Selkies' virtual environment)


@dataclass
class Running:
    """Processes of one system: CPU is summed over each side's process trees."""

    servers: list[Proc] = field(default_factory=list)
    viewers: list[Proc] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    #: read at the end of the measured window into ``facts`` (e.g. what a log says was used)
    probes: dict[str, Callable[[], Any]] = field(default_factory=dict)
    #: read once the processes have stopped (e.g. a statistics file written at exit); a
    #: reader returns None when there is nothing to report
    after_stop: dict[str, Callable[[], Any]] = field(default_factory=dict)

    def all(self) -> list[Proc]:
        return [*self.viewers, *self.servers]

    def dead(self) -> str | None:
        """Why the system stopped working (a process exited), or None."""
        for p in self.all():
            if not p.alive():
                return f"{p.name} exited with {p.popen.returncode}: {p.log_tail()}"
        return None

    def stop(self) -> None:
        for p in self.all():
            p.stop()


class SystemUnderTest(Protocol):
    name: str

    #: how this system is tuned for low latency, per path (printed in the JSON and the docs)
    def tuning(self, path: str) -> str: ...

    def missing(self) -> str | None:
        """Why this system cannot run on this machine, or None when it can."""

    def start(self, stage: Stage) -> Running:
        """Start the server (capturing display A) and the viewer (on display B); raise
        NotRunnable when either does not come up."""


def missing_tools(tools: Sequence[str], hint: str) -> str | None:
    lacking = [t for t in tools if shutil.which(t) is None]
    if lacking:
        return f"{', '.join(lacking)} not installed ({hint})"
    return None
