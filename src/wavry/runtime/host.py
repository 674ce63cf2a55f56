"""`wavry host`: serve RIFT sessions (control messages; media sources plug in later)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from wavry.net.addr import format_hostport
from wavry.net.host import HostServer
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.config import HostConfig
from wavry.rift.host import HostEndpoint
from wavry.store import TrustedDevices, load_or_create_identity

TRUST_ANY_WARNING = (
    "WARNING: --trust any accepts every client that connects, without pairing. "
    "Use it only in labs and tests."
)


@dataclass(slots=True)
class HostOptions:
    listen: tuple[str, int] = ("0.0.0.0", 47800)
    trust_any: bool = False
    pair: bool = False
    name: str = ""
    config_dir: Path | None = None


def _format_code(code: str) -> str:
    return f"{code[:3]} {code[3:]}"


class HostRuntime:
    """Wires a HostEndpoint to a socket, the trusted-devices file and the console."""

    def __init__(self, opts: HostOptions, out: TextIO = sys.stdout) -> None:
        self.opts = opts
        self.out = out
        self.identity = load_or_create_identity(opts.config_dir)
        self.trusted = TrustedDevices(opts.config_dir)
        name = opts.name or socket.gethostname()
        config = HostConfig(name=name, trust_any=opts.trust_any)
        self.endpoint = HostEndpoint(self.identity, config, trusted=self.trusted.ids())
        self.server = HostServer(self.endpoint, on_event=self._on_event)
        self.bound: tuple[str, int] | None = None
        self.on_message: Callable[[int, rift_pb2.Message], None] | None = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def start(self) -> tuple[str, int]:
        host, port = self.opts.listen
        self.bound = await self.server.start(host, port)
        b = format_hostport(*self.bound)
        self.say(f'Wavry host "{self.endpoint.config.name}"')
        self.say(f"  Wavry ID: {self.identity.wavry_id}")
        self.say(f"  RIFT host listening on udp://{b}")
        shown = self.bound[0]
        if shown in ("0.0.0.0", "::"):
            shown = "<this machine's address>"
        self.say(f"  connect with: wavry ping {format_hostport(shown, self.bound[1])}")
        if self.opts.trust_any:
            self.say(TRUST_ANY_WARNING)
        else:
            n = len(self.endpoint.trusted)
            self.say(
                f"  trust: paired devices only ({n} trusted); unknown clients must enter a "
                "pairing code"
            )
        if self.opts.pair:
            self.endpoint.issue_pairing_code(self.server._clock())
            self.server.flush()
        return self.bound

    def _on_event(self, event: ev.HostEvent) -> None:
        if isinstance(event, ev.PairingCodeIssued):
            self.say(
                f"Pairing code: {_format_code(event.code)}  "
                "(valid 5 minutes, 5 attempts; enter it on the client)"
            )
        elif isinstance(event, ev.DevicePaired):
            self.trusted.add(event.client_id, event.name)
            self.say(f"paired and trusted: {event.name or '?'} ({event.client_id})")
        elif isinstance(event, ev.PairingAttemptFailed):
            self.say(f"wrong pairing code from {event.client_id} ({event.attempts_left} left)")
        elif isinstance(event, ev.ClientConnected):
            self.say(
                f"handshake from {event.name or '?'} ({event.client_id}) "
                f"at {format_hostport(str(event.addr[0]), int(event.addr[1]))}"
            )
        elif isinstance(event, ev.ClientAccepted):
            self.say(f"session {event.alias:08x} accepted for {event.client_id}")
        elif isinstance(event, ev.ClientRejected):
            reason = rift_pb2.RejectReason.Name(event.reason)  # type: ignore[arg-type]
            self.say(f"session {event.alias:08x} rejected: {reason}")
        elif isinstance(event, ev.ClientMigrated):
            self.say(f"session {event.alias:08x} moved to {event.new_addr[0]}:{event.new_addr[1]}")
        elif isinstance(event, ev.ClientStalled):
            self.say(f"session {event.alias:08x} stalled ({event.silence_s:.1f} s silent)")
        elif isinstance(event, ev.ClientGone):
            self.say(
                f"session {event.alias:08x} ended: {event.reason.name.lower()} ({event.message})"
            )
        elif isinstance(event, ev.ClientMessage) and self.on_message is not None:
            self.on_message(event.alias, event.message)

    async def close(self) -> None:
        await self.server.close()


async def serve(opts: HostOptions, stop: asyncio.Event | None = None) -> None:
    runtime = HostRuntime(opts)
    await runtime.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        runtime.say("shutting down")
        await runtime.close()
