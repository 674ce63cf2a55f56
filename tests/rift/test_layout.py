"""The core's test helpers live in `wavry.rift.testing`, which only tests and benchmarks use."""

from __future__ import annotations

import re
from pathlib import Path

import wavry

SRC = Path(wavry.__file__).parent
IMPORT = re.compile(r"^\s*(from|import)\s+wavry\.rift\.testing", re.MULTILINE)


def test_the_product_never_imports_the_core_test_helpers() -> None:
    users = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if IMPORT.search(p.read_text(encoding="utf-8"))
    )
    allowed = ("bench/", "rift/testing/")
    assert [u for u in users if not u.startswith(allowed)] == []


def test_no_core_module_is_over_about_500_lines() -> None:
    sizes = {
        str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines())
        for sub in ("rift", "net")
        for p in (SRC / sub).rglob("*.py")
        if not p.name.endswith("_pb2.py")
    }
    assert {name: n for name, n in sizes.items() if n > 550} == {}
