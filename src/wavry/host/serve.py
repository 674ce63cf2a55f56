"""`wavry host`: run a host until Ctrl+C, SIGTERM, or a fatal error."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from wavry.host.notices import Observer
from wavry.host.options import HostOptions
from wavry.host.runtime import HostRuntime
from wavry.host.setup import HostError

__all__ = ["serve"]


async def serve(
    opts: HostOptions, stop: asyncio.Event | None = None, observer: Observer | None = None
) -> None:
    """Serve sessions until ``stop`` is set (or SIGINT/SIGTERM). Raises HostError when the host
    cannot start or stops by itself (the picture source went away)."""
    runtime = HostRuntime(opts, observer)
    try:
        await runtime.start()
    except HostError as exc:
        runtime.failure = str(exc)  # the error is the last word, not "shutting down"
        await runtime.close()
        raise
    except BaseException:
        await runtime.close()
        raise
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    asked = asyncio.ensure_future(stop.wait())
    failed = asyncio.ensure_future(runtime.stopped())
    try:
        await asyncio.wait({asked, failed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        asked.cancel()
        failed.cancel()
        await runtime.close()
    if runtime.failure:
        raise HostError(runtime.failure)
