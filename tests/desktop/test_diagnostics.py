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
        names = {view.tree.topLevelItem(i).text(0) for i in range(view.tree.topLevelItemCount())}
        assert {"synthetic", "decoder-h264", "x11"} <= names
        by_name = {r.name: r for r in view.results}
        for i in range(view.tree.topLevelItemCount()):
            item = view.tree.topLevelItem(i)
            r = by_name[item.text(0)]
            assert item.text(2) == r.detail
            assert item.text(1) == {"ok": "works", "unavailable": "not available",
                                    "error": "probe failed"}[r.status]  # fmt: skip
            if r.status != "ok" and r.remedy:
                assert item.child(0).text(0) == f"How to fix: {r.remedy}"
            else:
                assert item.childCount() == 0
        # no DISPLAY here: the X11 probe says so and how to fix it
        x11 = next(view.tree.topLevelItem(i) for i in range(view.tree.topLevelItemCount())
                   if view.tree.topLevelItem(i).text(0) == "x11")  # fmt: skip
        assert x11.text(1) == "not available" and x11.childCount() == 1
        ok = sum(r.status == "ok" for r in view.results)
        assert view.summary.text().startswith(f"{ok} of {len(view.results)} probes work")
        shot(desk.window, "diagnostics")
        first = view.ran_at
        click(view.rerun)
        assert view.running
        await until(lambda: not view.running, 90, "the probes again")
        assert view.ran_at is not None and first is not None and view.ran_at > first

    run(desk, scenario(), 200)
