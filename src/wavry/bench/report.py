"""Shared helpers for benchmark output: a printed table and machine facts for the JSON."""

from __future__ import annotations

import os
import platform
import time
from typing import Any


def machine_facts() -> dict[str, Any]:
    from wavry import native

    return {
        "python": platform.python_version(),
        #: compiled (mypyc) or plain Python, and why (src/wavry/native.py)
        "protocol_core": native.status(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "time_unix": time.time(),
    }


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(title)
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print()
