"""`wavry connect` at the terminal: the client runtime (:mod:`wavry.client.runtime`) with the
terminal's answers to its questions (pairing code, changed host identity), its lines on
stderr, and Ctrl+C as a clean stop (the summary still comes out)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from wavry.client.options import ConnectOptions, options_from_settings
from wavry.client.runtime import ClientCallbacks, ClientResult, ClientRuntime
from wavry.runtime.session import terminal_prompts
from wavry.settings import ConnectSettings

__all__ = ["ConnectOptions", "connect_target", "options_from_settings", "run_connect"]


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


async def connect_target(
    target: str | None,
    settings: ConnectSettings,
    session: Callable[[ConnectOptions], Awaitable[ClientResult]] | None = None,
) -> ClientResult:
    """`wavry connect [TARGET]`: an address, a host of the account through the gateway, or a
    host picked from the LAN and the account (wavry.connectivity.targets), then the session
    (``session``: how it runs, `run_connect` unless a caller drives it, e.g. --events-json).
    The host lookup counts in time_to_first_frame_ms."""
    from wavry.connectivity.services import saved_gateway
    from wavry.connectivity.targets import TargetError, resolve_target, terminal_ask
    from wavry.settings import DEFAULT_PORT
    from wavry.store import load_or_create_identity

    started = time.monotonic()
    resolved = await resolve_target(
        target,
        settings.gateway,
        load_or_create_identity(),
        default_port=DEFAULT_PORT,
        saved_gateway=saved_gateway(),
        ask=terminal_ask(),
        timeout=settings.timeout_seconds,
        say=_say,
    )
    logging.getLogger("wavry.dial").debug(
        "target %s resolved in %.1f ms", resolved.label, (time.monotonic() - started) * 1000
    )
    opts = options_from_settings(settings, resolved.host, resolved.port)
    if resolved.host_id and opts.host_id and opts.host_id != resolved.host_id:
        raise TargetError(
            f"--host-id {opts.host_id} is not the Wavry ID of {resolved.label} ({resolved.host_id})"
        )
    opts.host_id = opts.host_id or resolved.host_id
    opts.route, opts.label, opts.started_at = resolved.route, resolved.label, started
    return await (session or run_connect)(opts)
