"""A host or client of the connectivity layer without media, for the NAT bed (run inside a
namespace): ``python -m tests.connectivity.peer_harness host URL NAME`` keeps a RIFT host online
at the gateway (it accepts vouched clients and answers pings); ``... client URL NAME SECONDS``
connects by name, pings for SECONDS and prints one JSON line: the path changes and the pings
answered on each path. Both print their events as JSON lines on stdout."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from wavry.connectivity.dial import GatewayRoute, find_host
from wavry.connectivity.paths import PathChanged
from wavry.connectivity.presence import HostPresence
from wavry.net.host import HostServer
from wavry.rift import events as ev
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.host import HostEndpoint
from wavry.store import load_or_create_identity


def emit(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


class Host:
    def __init__(self) -> None:
        self.identity = load_or_create_identity()
        self.endpoint = HostEndpoint(self.identity, HostConfig(name="harness"))
        self.server = HostServer(self.endpoint, on_event=self.on_event)
        self.bound: tuple[str, int] | None = None

    def say(self, text: str) -> None:
        emit(event="say", text=text)

    def on_event(self, e: ev.HostEvent) -> None:
        if isinstance(e, ev.ClientAccepted):
            emit(event="accepted", client=e.client_id)
        elif isinstance(e, ev.ClientRejected):
            emit(event="rejected", reason=int(e.reason))
        elif isinstance(e, ev.ClientMigrated):
            emit(event="migrated", addr=list(e.new_addr))


async def run_host(url: str, name: str) -> None:
    host = Host()
    host.bound = await host.server.start("0.0.0.0", 47800)
    presence = HostPresence(url, name)
    await presence.start(host)
    emit(event="started", wavry_id=host.identity.wavry_id)
    try:
        await asyncio.Event().wait()
    finally:
        await presence.close()
        await host.server.close()


async def run_client(url: str, name: str, seconds: float) -> None:
    identity = load_or_create_identity()
    started = time.monotonic()
    target = await find_host(url, name, identity)
    changes: list[dict[str, Any]] = []

    def on_path(e: PathChanged) -> None:
        change = {"at": round(e.at - started, 3), "mono": round(e.at, 3), "kind": e.kind.value,
                  "reason": e.reason}  # fmt: skip
        changes.append(change)
        emit(event="path", **change)

    route = GatewayRoute(target, identity, timeout=10, on_path=on_path)
    session = ClientSession(identity, ClientConfig(name="harness"), target.host.wavry_id)
    conn = await route.open(session)
    pongs: dict[str, int] = {}
    accepted_at = None
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            try:
                e = await conn.next_event(0.2)
            except TimeoutError:
                continue
            if isinstance(e, ev.SessionAccepted) and accepted_at is None:
                accepted_at = round(time.monotonic() - started, 3)
                emit(event="accepted", at=accepted_at)
            elif isinstance(e, ev.PongReceived):
                kind = conn.paths.kind.value if conn.paths.kind else "none"
                pongs[kind] = pongs.get(kind, 0) + 1
            elif isinstance(e, ev.SessionClosed):
                emit(event="closed", message=e.message)
                break
    finally:
        await conn.close()
    emit(event="summary", accepted_at=accepted_at, changes=changes, pongs=pongs)


def main() -> None:
    role, url, name = sys.argv[1], sys.argv[2], sys.argv[3]
    if role == "host":
        asyncio.run(run_host(url, name))
    else:
        asyncio.run(run_client(url, name, float(sys.argv[4])))


if __name__ == "__main__":
    main()
