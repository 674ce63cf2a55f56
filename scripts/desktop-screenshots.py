#!/usr/bin/env python3
"""Regenerate the screenshots docs/desktop.md shows (docs/desktop/*.png).

They are made by the desktop tests themselves, against real back-ends (a `wavry gateway`, hosts,
clients, a stream on Xvfb): this runs those tests with WAVRY_DESKTOP_SCREENSHOTS pointing at
docs/desktop/ and checks that every picture the page shows was written in this run.

    .venv/bin/python scripts/desktop-screenshots.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/desktop/test_signin.py::test_first_run_register_with_totp_then_sign_in_again",
    "tests/desktop/test_computers.py::test_account_hosts_with_state_and_shares",
    "tests/desktop/test_thiscomputer.py::test_share_pair_a_client_watch_it_and_disconnect_it",
    "tests/desktop/test_diagnostics.py",
    "tests/desktop/test_settings_view.py::test_client_host_network_and_app_settings_round_trip",
    "tests/desktop/test_stream.py",
    "tests/desktop/test_flow_xvfb.py",
]


def shown_in_docs() -> set[str]:
    text = (ROOT / "docs" / "desktop.md").read_text()
    return set(re.findall(r"\]\(desktop/([\w.-]+\.png)\)", text))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "desktop")
    args = ap.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    env = dict(os.environ, WAVRY_DESKTOP_SCREENSHOTS=str(out))
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS]
    code = subprocess.run(pytest, cwd=ROOT, env=env, check=False).returncode
    if code != 0:
        print(f"error: the screenshot tests failed (exit status {code})", file=sys.stderr)
        return 1
    fresh = {p.name for p in out.glob("*.png") if p.stat().st_mtime >= started}
    missing = sorted(shown_in_docs() - fresh)
    if missing:
        print(f"error: not made in this run: {', '.join(missing)}", file=sys.stderr)
        return 1
    for name in sorted(fresh):
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
