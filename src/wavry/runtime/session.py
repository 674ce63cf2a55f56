"""Client-side session set-up shared by `wavry ping` and `wavry connect`: pins (trust on first
use), handshake, Hello, pairing when the host asks, clear errors.

Questions for the user are callbacks (:class:`Prompts`): the pairing code, and whether to trust
a host whose identity changed since it was pinned. The CLI answers them at the terminal
(:func:`terminal_prompts`); the desktop app answers them in dialogs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from wavry.net.addr import format_hostport
from wavry.net.client import ClientConnection
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig
from wavry.rift.identity import InvalidWavryId, public_key_from_wavry_id
from wavry.store import KnownHosts, load_or_create_identity

__all__ = [
    "Established",
    "IdentityChange",
    "PairingPrompt",
    "Prompts",
    "SessionFailed",
    "check_host_id",
    "establish",
    "normalize_pair_code",
    "terminal_prompts",
]


class SessionFailed(Exception):
    """A session that could not be set up; the message is for the user."""


_CODE_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_pair_code(text: str) -> str:
    """A pairing code as typed (``054 270``, ``054-270``, ``054270``) → its 6 digits.
    Raises ValueError with what is wrong."""
    code = _CODE_SEPARATORS.sub("", text)
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise ValueError(f"a pairing code is 6 digits (spaces and dashes allowed), got {text!r}")
    return code


def check_host_id(text: str) -> str:
    """A Wavry ID as given with --host-id, checked for format. Raises ValueError."""
    value = text.strip()
    try:
        public_key_from_wavry_id(value)
    except InvalidWavryId as exc:
        raise ValueError(
            f"--host-id is not a Wavry ID ({exc}); the host prints its ID at start "
            "(`wavry id` there shows it too)"
        ) from None
    return value


@dataclass(frozen=True, slots=True)
class PairingPrompt:
    """The host asks for its pairing code. ``attempt`` counts from 1; ``error`` is why the
    previous code was refused (empty on the first ask)."""

    address: str
    host_message: str
    attempt: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """The host at ``address`` presented ``presented``; this device pinned ``pinned`` for it."""

    address: str
    pinned: str
    presented: str


PairingCallback = Callable[[PairingPrompt], Awaitable[str | None]]
#: opens a started connection for a session another way than to one address (the gateway's
#: route, wavry.connectivity.dial.GatewayRoute.open)
Dial = Callable[[ClientSession], Awaitable[ClientConnection]]
IdentityCallback = Callable[[IdentityChange], Awaitable[bool]]


@dataclass(slots=True)
class Prompts:
    """How set-up asks the user. ``pairing_code`` returns the code (None: give up);
    ``identity_changed`` returns True to trust the new identity (re-pin and connect)."""

    pairing_code: PairingCallback | None = None
    identity_changed: IdentityCallback | None = None


def identity_mismatch_help(address: str, pinned: str, got: str) -> str:
    return (
        f"the host at {address} presented Wavry ID {got}, but this device pinned {pinned} "
        f"for that address the first time it connected. If the host was reinstalled or its "
        f"identity was reset, check its new ID on the host with `wavry id`, then forget the old "
        f"pin with `wavry pins forget {address}` and connect again. Otherwise someone may be "
        "intercepting the connection: do not continue."
    )


async def read_line(prompt: str) -> str | None:
    """One line from the terminal without blocking the loop (None at end of input). A daemon
    thread reads it: a Ctrl+C while it waits ends the process instead of hanging in the
    executor's shutdown."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def done(text: str | None) -> None:
        if not answer.done():
            answer.set_result(text)

    def read() -> None:
        try:
            text: str | None = input(prompt)
        except (EOFError, OSError, ValueError):
            text = None
        with contextlib.suppress(RuntimeError):  # the loop is gone
            loop.call_soon_threadsafe(done, text)

    threading.Thread(target=read, name="wavry-prompt", daemon=True).start()
    return await answer


async def _terminal_code(prompt: PairingPrompt) -> str | None:
    if prompt.error:
        print(f"{prompt.error}", file=sys.stderr, flush=True)
    elif prompt.host_message:
        print(f"host says: {prompt.host_message}", file=sys.stderr, flush=True)
    return await read_line("Pairing code shown on the host: ")


async def _terminal_identity(change: IdentityChange) -> bool:
    print(
        f"warning: {identity_mismatch_help(change.address, change.pinned, change.presented)}",
        file=sys.stderr,
        flush=True,
    )
    answer = await read_line(f"Trust {change.presented} for {change.address} from now on? [y/N] ")
    return answer is not None and answer.strip().lower() in ("y", "yes")


def terminal_prompts() -> Prompts:
    """Questions at the terminal when there is one, else none (a clear error instead)."""
    if not sys.stdin.isatty():
        return Prompts()
    return Prompts(pairing_code=_terminal_code, identity_changed=_terminal_identity)


@dataclass(slots=True)
class Established:
    conn: ClientConnection
    session: ClientSession
    address: str
    host_id: str
    host_name: str
    handshake_ms: float
    ack: rift_pb2.HelloAck


_ATTEMPTS_LEFT = re.compile(r"(\d+) attempts? left")
POLL_S = 0.05  # how often set-up looks for an ICMP error while it waits


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
    prompts: Prompts | None = None,
    dial: Dial | None = None,
    address: str | None = None,
) -> Established:
    """Connect and wait for an accepted HelloAck. Raises SessionFailed with advice.

    ``dial`` (with an ``address`` label and the ``host_id`` the route vouches for) replaces
    the UDP socket to ``host``:``port`` — a session through the gateway (docs/connecting.md)."""
    address = address or format_hostport(host, port)
    try:
        code = normalize_pair_code(pair_code) if pair_code is not None else None
        wanted = check_host_id(host_id) if host_id is not None else None
    except ValueError as exc:
        raise SessionFailed(str(exc)) from None
    prompts = prompts or Prompts()
    pins = KnownHosts(config_dir)
    while True:
        pin = pins.get(address)
        try:
            return await _attempt(
                host, port, address, config, timeout, code, wanted, pin.wavry_id if pin else None,
                config_dir, say, prompts, dial,
            )  # fmt: skip
        except _IdentityChanged as changed:
            change = IdentityChange(address, changed.pinned, changed.presented)
            if prompts.identity_changed is None or not await prompts.identity_changed(change):
                raise SessionFailed(
                    identity_mismatch_help(address, changed.pinned, changed.presented)
                ) from None
            pins.pin(address, changed.presented)
            say(f"pinned host identity {changed.presented} for {address} (accepted by you)")


class _IdentityChanged(Exception):
    def __init__(self, pinned: str, presented: str) -> None:
        super().__init__(pinned, presented)
        self.pinned, self.presented = pinned, presented


async def _attempt(
    host: str,
    port: int,
    address: str,
    config: ClientConfig,
    timeout: float,
    code: str | None,
    wanted: str | None,
    pinned: str | None,
    config_dir: Path | None,
    say: Callable[[str], None],
    prompts: Prompts,
    dial: Dial | None = None,
) -> Established:
    identity = load_or_create_identity(config_dir)
    expected = wanted or pinned
    session = ClientSession(identity, config, expected)
    if dial is not None:
        conn = await dial(session)
    else:
        conn = ClientConnection(session)
        await conn.start(host, port)
    attempts = 0
    handshake_ms = 0.0
    try:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if session.host_id is None:
                    why = getattr(conn, "no_answer_reason", None)  # a dialled route knows why
                    raise SessionFailed(
                        f"no answer from {address} within {timeout:g} s: "
                        + (
                            why()
                            if why is not None
                            else f"is `wavry host` running there, and is UDP port {port} reachable?"
                        )
                    )
                raise SessionFailed(f"no accepted session with {address} within {timeout:g} s")
            if session.host_id is None and conn.receive_errors:
                # an ICMP error (port unreachable) for our handshake: nothing listens there
                raise SessionFailed(
                    f"nothing answers on UDP port {port} at {address} (the machine said the port "
                    "is closed): is `wavry host` running there, on that port?"
                )
            try:
                event = await conn.next_event(min(left, POLL_S))
            except TimeoutError:
                continue
            if isinstance(event, ev.HandshakeCompleted):
                handshake_ms = event.duration_s * 1000
                if pinned is None and wanted is None:
                    KnownHosts(config_dir).pin(address, event.host_id)
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
                attempts += 1
                code = await _ask_code(address, event.message, attempts, "", code, prompts)
                conn.pair(code)
                deadline = time.monotonic() + timeout
            elif isinstance(event, ev.PairingFinished):
                if event.ok:
                    say(f"pairing: {event.message}")
                    continue
                m = _ATTEMPTS_LEFT.search(event.message)
                if prompts.pairing_code is None or m is None or int(m.group(1)) <= 0:
                    raise SessionFailed(f"pairing failed: {event.message}")
                attempts += 1
                code = await _ask_code(address, "", attempts, event.message, None, prompts)
                conn.pair(code)
                deadline = time.monotonic() + timeout
            elif isinstance(event, ev.SessionClosed):
                if event.kind is ev.CloseKind.IDENTITY_MISMATCH and session.host_id:
                    if wanted is not None:
                        expected_from = (
                            f"the gateway lists {wanted} for it"
                            if dial is not None
                            else f"you asked for {wanted} (--host-id)"
                        )
                        raise SessionFailed(
                            f"the host at {address} presented Wavry ID {session.host_id}; "
                            f"{expected_from}. Check the ID on the host with `wavry id`."
                        )
                    assert pinned is not None
                    raise _IdentityChanged(pinned, session.host_id)
                raise SessionFailed(event.message)
    except BaseException:
        await conn.close("set-up failed")
        raise


async def _ask_code(
    address: str,
    host_message: str,
    attempt: int,
    error: str,
    given: str | None,
    prompts: Prompts,
) -> str:
    """The code to send: the one given up front (first attempt), else asked for; a code typed
    in a wrong format is asked for again at once (it costs no attempt on the host)."""
    if given is not None:
        return given
    if prompts.pairing_code is None:
        raise SessionFailed(
            "the host requires pairing: pass the 6-digit code it shows with --pair-code"
            + (f" (it said: {host_message})" if host_message else "")
        )
    while True:
        typed = await prompts.pairing_code(PairingPrompt(address, host_message, attempt, error))
        if typed is None or not typed.strip():
            raise SessionFailed("pairing cancelled: no code entered")
        try:
            return normalize_pair_code(typed)
        except ValueError as exc:
            error = str(exc)
