"""The event-loop runner freezes what start-up made, so the collector's full passes walk only
what the session makes afterwards."""

from __future__ import annotations

import gc
import subprocess
import sys


def test_run_freezes_start_up_objects() -> None:
    code = (
        "import gc\n"
        "from wavry.net.loop import run\n"
        "before = gc.get_freeze_count()\n"
        "async def main():\n"
        "    return gc.get_freeze_count()\n"
        "after = run(main())\n"
        "print(before, after)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert before == 0
    # every module object and class imported so far sits in the permanent generation
    assert after > 1000


def test_settle_gc_is_safe_to_repeat() -> None:
    from wavry.net.loop import settle_gc

    n0 = gc.get_freeze_count()
    settle_gc()
    settle_gc()
    assert gc.get_freeze_count() >= n0
    gc.unfreeze()
