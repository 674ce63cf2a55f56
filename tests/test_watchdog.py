"""The suite's watchdog (tests/conftest.py): a test that outlives its timeout even where
pytest-timeout's exception is swallowed ends the run with its stack, not a silent hang."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

STUCK = """
import time
import pytest

@pytest.mark.timeout(1)
def test_swallows_every_exception():
    while True:
        try:
            time.sleep(5)
        except BaseException:
            pass
"""


def test_a_test_that_swallows_its_timeout_ends_the_run_with_its_stack(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).parent / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_stuck.py").write_text(STUCK)
    env = dict(os.environ, WAVRY_TEST_WATCHDOG_SLACK_S="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3, run.stdout + run.stderr
    assert "still running after 3 s" in run.stderr, run.stderr
    assert "test_swallows_every_exception" in run.stderr, run.stderr
