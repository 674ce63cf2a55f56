"""Shared helpers for tests that run real `wavry` processes (fixture `proc`)."""

from __future__ import annotations

import faulthandler
import os
import re
import sys
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from wavry.runtime.processes import WAVRY, HostProcess, free_udp_port, running_host, wavry_env

# pytest-timeout's signal method fails a test by raising inside whatever the main thread runs; a
# test blocked where that exception is swallowed (an event-loop callback) or that loops in its
# own clean-up would hang the whole run until CI's own limit, with no word of where. This
# watchdog thread is the backstop: well past the test's own timeout it prints every thread's
# stack (outside pytest's capture) and ends the process, so the run fails with the place it hung
# instead of timing out.
WATCHDOG_FACTOR = 2.0
WATCHDOG_SLACK_S = float(os.environ.get("WAVRY_TEST_WATCHDOG_SLACK_S", "60"))


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 120)


def _hung(item: pytest.Item, limit: float) -> None:
    capman = item.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n!!! {item.nodeid} still running after {limit:.0f} s: stacks, then exit\n")
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(3)


def _terminal_fd(config: pytest.Config) -> int:
    """The run's real stderr: pytest's fd capture saves it while it captures fd 2."""
    capman = config.pluginmanager.getplugin("capturemanager")
    err = getattr(getattr(capman, "_global_capturing", None), "err", None)
    saved = getattr(err, "targetfd_save", None)
    return saved if isinstance(saved, int) else 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `pure` replace a method of a protocol-core object to watch it, which the
    compiled core (src/wavry/native.py) does not allow: they run in scripts/test.sh's
    WAVRY_PURE=1 pass instead."""
    from wavry import native

    if not native.compiled():
        return
    skip = pytest.mark.skip(reason="patches the protocol core: runs in the WAVRY_PURE=1 pass")
    for item in items:
        if item.get_closest_marker("pure") is not None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    limit = _timeout_of(item) * WATCHDOG_FACTOR + WATCHDOG_SLACK_S
    watchdog = threading.Timer(limit, _hung, (item, limit))
    watchdog.daemon = True
    watchdog.start()
    # ... and the backstop of that backstop: a thread of faulthandler's own (C), which needs no
    # GIL, for a hang that holds it (a Python thread, the watchdog above or pytest-timeout's,
    # never runs then; one browser test hung 17 minutes that way)
    faulthandler.dump_traceback_later(limit + 30, exit=True, file=_terminal_fd(item.config))
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        watchdog.cancel()


# A test that skips because a tool or package is missing is a set-up defect where the set-up
# ran: scripts/test.sh (the README's test command, and CI's) installs everything first and sets
# WAVRY_NO_TOOL_SKIPS=1, so there such a skip fails. One session's fresh VM lacked nftables, and
# CI went green while skipping every NAT traversal test.
_TOOL_MISSING = re.compile(r"not (found|installed)|apt-get install|setup\.sh installs")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and os.environ.get("WAVRY_NO_TOOL_SKIPS") == "1"):
        return
    if hasattr(report, "wasxfail") or not isinstance(report.longrepr, tuple):
        return
    reason = str(report.longrepr[2])
    if _TOOL_MISSING.search(reason):
        report.outcome = "failed"
        report.longrepr = f"skipped for a missing tool although scripts/setup.sh ran: {reason}"


@pytest.fixture(autouse=True)
def _stays_normally_scheduled() -> Iterator[None]:
    """A test that leaves the test process under a real-time policy fails (and the policy is
    put back): every thread and process started afterwards would inherit it, and real-time
    processes that spin starve everything else. SVT-AV1 run as root did that once, and a later
    browser test hung for good with the pytest process, Playwright's driver and Chromium at
    SCHED_FIFO 99."""
    yield
    policy = os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
    if policy in (os.SCHED_FIFO, os.SCHED_RR):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        pytest.fail("the test left the test process under a real-time scheduling policy")


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
