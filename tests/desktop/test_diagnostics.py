"""Diagnostics runs the real `wavry doctor` probes on a worker thread (the window keeps
answering), lists every probe with its status and detail, puts the remedy under each probe that
does not work, and runs them again on demand."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from tests.desktop.conftest import click, run, until


def test_probes_with_status_detail_and_remedy_then_again(desk: Any, shot: Any) -> None:
    view = desk.window.diagnostics
    ticks: list[float] = []

    async def ticking() -> None:  # the loop keeps turning while the probes run
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        ticker = asyncio.ensure_future(ticking())
        desk.window.show()
        desk.window.show_view("diagnostics")  # shown: the probes start
        assert view.running and not view.rerun.isEnabled()
        await until(lambda: not view.running, 90, "the probes")
        ticker.cancel()
        assert view.results, view.banner.label.text()
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert max(gaps) < 1.0, f"the window stalled {max(gaps):.2f} s while probing"
        text = " ".join(view.report.toPlainText().split())
        names = {r.name for r in view.results}
        assert {"synthetic", "decoder-h264", "x11"} <= names
        for r in view.results:
            status = {"ok": "works", "unavailable": "not available", "error": "probe failed"}
            detail, remedy = " ".join(r.detail.split()), " ".join(r.remedy.split())
            assert f"{r.name} — {status[r.status]}: {detail}" in text
            if r.status != "ok" and r.remedy:
                assert f"How to fix: {remedy}" in text
        # what needs attention comes first; no DISPLAY here: X11 says so and how to fix it
        assert text.index("Needs attention") < text.index("Works (")
        assert text.index("x11 — not available") < text.index("synthetic — works")
        ok = sum(r.status == "ok" for r in view.results)
        assert view.summary.text().startswith(f"{ok} of {len(view.results)} probes work")
        shot(desk.window, "diagnostics")
        first = view.ran_at
        click(view.rerun)
        assert view.running
        await until(lambda: not view.running, 90, "the probes again")
        assert view.ran_at is not None and first is not None and view.ran_at > first

    run(desk, scenario(), 200)


def test_a_probe_process_that_crashes_is_one_line_not_the_app(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """The probes run in a child process: a C library crashing there (a segfault) is reported,
    and the app goes on."""
    import stat
    import sys

    import pytest

    from wavry.desktop.diagnostics import ProbesFailed, run_probes

    crash = tmp_path / "python"
    crash.write_text("#!/bin/sh\necho 'probing…' >&2\nkill -SEGV $$\n")
    crash.chmod(crash.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "executable", str(crash))
    with pytest.raises(ProbesFailed, match=r"ended \(signal 11\): probing…"):
        asyncio.run(run_probes())
    garbage = tmp_path / "garbage"
    garbage.write_text("#!/bin/sh\necho 'not json'\n")
    garbage.chmod(garbage.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "executable", str(garbage))
    with pytest.raises(ProbesFailed, match="no readable results"):
        asyncio.run(run_probes())
