"""The page's RIFT code under node's test runner (web/test/*.test.ts): the Noise vector, the
Reed–Solomon vectors, golden headers, and bytes/values made by the Python implementation
(protobuf messages, rift.proto's descriptor, the latency marker, the pairing proof)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

WEB = Path(__file__).resolve().parents[2] / "web"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules").is_dir():
        pytest.fail("the browser client's toolchain is missing: run scripts/setup.sh")
    return node


def test_page_rift_code_passes_node_tests(page_fixtures: Path) -> None:
    node = _node()
    env = dict(os.environ, WAVRY_WEB_FIXTURES=str(page_fixtures))
    subprocess.run([node, "build.mjs", "--tests"], cwd=WEB, check=True, timeout=120)
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", "dist-test/"],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert "# fail 0" in out and "# skipped 0" in out, out[-3000:]


def test_page_typechecks() -> None:
    node = _node()
    tsc = WEB / "node_modules" / "typescript" / "bin" / "tsc"
    run = subprocess.run(
        [node, str(tsc), "--noEmit", "-p", "."],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=160,
    )
    assert run.returncode == 0, run.stdout[-4000:]
