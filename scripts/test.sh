#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff" >&2
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
# everything the tests use is installed now: a test skipped for a missing tool fails
export WAVRY_NO_TOOL_SKIPS=1
if [ $# -gt 0 ]; then
    exec .venv/bin/pytest "$@"
fi
# The whole suite: the desktop app's tests in a pytest process of their own. A process has one
# QApplication, and once it exists pytest-qt runs Qt's event processing after every test: the
# other tests stay out of it. Native tracebacks there: formatting pytest's own (it parses the
# test's source) inside the Qt event loop hit CPython's "AST constructor recursion depth
# mismatch" and ended the run with an INTERNALERROR instead of the failure.
rc=0
.venv/bin/pytest --durations=25 --ignore=tests/desktop || rc=$?
echo "== pytest (desktop app)" >&2
.venv/bin/pytest --tb=native tests/desktop || { s=$?; [ "$rc" -ne 0 ] || rc=$s; }
# The protocol core's tests again on its plain-Python modules (the main run uses the compiled
# ones, src/wavry/native.py): the fallback stays right, and the tests that replace a core
# object's method to watch it (marked `pure`: compiled objects cannot be patched) run here.
echo "== pytest (protocol core as plain Python)" >&2
WAVRY_PURE=1 .venv/bin/pytest -q tests/rift || { s=$?; [ "$rc" -ne 0 ] || rc=$s; }
exit "$rc"
