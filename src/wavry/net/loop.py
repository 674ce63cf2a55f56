"""Event loop selection (uvloop when available) and the collector's start-up policy."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def settle_gc() -> None:
    """Keep the cyclic collector's full passes short while media flows.

    A full (generation 2) pass walks every tracked object, and after start-up that is mostly
    modules, classes and the libraries' own state: 14–35 ms per pass in a streaming client,
    measured with ``gc.callbacks`` (docs/benchmarks.md, `bench throughput`), each one a late
    frame. Collecting once and freezing what exists moves it out of the collector's view, so a
    later pass walks only what the session itself made. Reference counting still frees
    everything; only cycles made before the freeze would live on, and start-up makes few.
    """
    gc.collect()
    gc.freeze()


def run(coro: Coroutine[Any, Any, T]) -> T:
    settle_gc()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    result: T = uvloop.run(coro)
    return result


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]
