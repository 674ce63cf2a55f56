"""Client-side session set-up shared by `wavry ping` and `wavry connect`: pins (trust on first
use), handshake, Hello, pairing when the host asks, clear errors."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wavry.net.addr import format_hostport
from wavry.net.client import ClientConnection
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.store import KnownHosts, load_or_create_identity


class SessionFailed(Exception):
    """A session that could not be set up; the message is for the user."""


def identity_mismatch_help(address: str, expected: str, got: str, pinned: bool) -> str:
    if not pinned:
        return (
            f"the host at {address} presented Wavry ID {got}, not the expected {expected}. "
            "Check the ID on the host with `wavry id`."
        )
    return (
        f"the host at {address} presented Wavry ID {got}, but this device pinned {expected} "
        f"for that address the first time it connected. If the host was reinstalled or its "
        f"identity was reset, check its new ID on the host with `wavry id`, then forget the old "
        f"pin with `wavry pins forget {address}` and connect again. Otherwise someone may be "
        "intercepting the connection: do not continue."
    )


async def _read_code() -> str:
    if not sys.stdin.isatty():
        raise SessionFailed(
            "the host requires pairing: pass the 6-digit code it shows with --pair-code"
        )
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, input, "Pairing code shown on the host: ")


@dataclass(slots=True)
class Established:
    conn: ClientConnection
    session: ClientSession
    address: str
    host_id: str
    host_name: str
    handshake_ms: float
    ack: rift_pb2.HelloAck


async def establish(
    host: str,
    port: int,
    config: ClientConfig,
    *,
    timeout: float = 10.0,
    pair_code: str | None = None,
    host_id: str | None = None,
    config_dir: Path | None = None,
    say: Callable[[str], None] = lambda _text: None,
) -> Established:
    """Connect and wait for an accepted HelloAck. Raises SessionFailed with advice."""
    address = format_hostport(host, port)
    identity = load_or_create_identity(config_dir)
    pins = KnownHosts(config_dir)
    pin = pins.get(address)
    expected = host_id or (pin.wavry_id if pin else None)
    session = ClientSession(identity, config, expected)
    conn = ClientConnection(session)
    await conn.start(host, port)
    code_used = False
    handshake_ms = 0.0
    try:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if session.host_id is None:
                    raise SessionFailed(
                        f"no answer from {address} within {timeout:g} s: is `wavry host` running "
                        f"there, and is UDP port {port} reachable?"
                    )
                raise SessionFailed(f"no accepted session with {address} within {timeout:g} s")
            try:
                event = await conn.next_event(left)
            except TimeoutError:
                continue
            if isinstance(event, ev.HandshakeCompleted):
                handshake_ms = event.duration_s * 1000
                if pin is None and host_id is None:
                    pins.pin(address, event.host_id)
                    say(f"pinned host identity {event.host_id} for {address} (first use)")
            elif isinstance(event, ev.SessionAccepted):
                return Established(
                    conn,
                    session,
                    address,
                    session.host_id or "",
                    session.host_name,
                    handshake_ms,
                    event.ack,
                )
            elif isinstance(event, ev.SessionRejected):
                if event.reason != rift_pb2.PAIRING_REQUIRED:
                    raise SessionFailed(f"the host refused the session: {event.message}")
                if code_used:
                    raise SessionFailed("pairing failed")
                say(f"host says: {event.message}")
                code = pair_code or await _read_code()
                code_used = True
                try:
                    conn.pair(code)
                except ValueError as exc:
                    raise SessionFailed(str(exc)) from exc
                deadline = time.monotonic() + timeout
            elif isinstance(event, ev.PairingFinished):
                say(f"pairing: {event.message}")
                if not event.ok:
                    raise SessionFailed(f"pairing failed: {event.message}")
            elif isinstance(event, ev.SessionClosed):
                if event.kind is ev.CloseKind.IDENTITY_MISMATCH and expected and session.host_id:
                    raise SessionFailed(
                        identity_mismatch_help(address, expected, session.host_id, pin is not None)
                    )
                raise SessionFailed(event.message)
    except BaseException:
        await conn.close("set-up failed")
        raise
