"""`wavry connect` at the terminal: the client runtime (:mod:`wavry.client.runtime`) with the
terminal's answers to its questions (pairing code, changed host identity), its lines on
stderr, and Ctrl+C as a clean stop (the summary still comes out)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from wavry.client.options import ConnectOptions, options_from_settings
from wavry.client.runtime import ClientCallbacks, ClientResult, ClientRuntime
from wavry.runtime.session import terminal_prompts

__all__ = ["ConnectOptions", "options_from_settings", "run_connect"]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run_connect(
    opts: ConnectOptions, callbacks: ClientCallbacks | None = None
) -> ClientResult:
    """Run one client session; Ctrl+C (SIGINT) stops it cleanly within a second."""
    cb = callbacks or ClientCallbacks(say=_say, prompts=terminal_prompts())
    rt = ClientRuntime(opts, cb)
    loop = asyncio.get_running_loop()
    handled = False
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not main thread
        loop.add_signal_handler(signal.SIGINT, rt.stop, "interrupted")
        handled = True
    try:
        return await rt.run()
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
