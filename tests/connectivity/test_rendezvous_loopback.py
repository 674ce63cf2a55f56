"""A host and a client meet through a real gateway on loopback: the host's presence (device-key
sign-in, registration as a host, signaling socket), the client's lookup by name, candidates from
the RIFT sockets (STUN asked from them), accept, and a RIFT session that the host accepts without
pairing because the gateway vouched for the client of the same account."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wavry.account.client import GatewayClient
from wavry.bench.netlab.services import (
    ControlPlane,
    free_port,
    start_gateway,
    start_relay,
    wait_ready,
)
from wavry.connectivity.dial import DialError, GatewayRoute, find_host
from wavry.connectivity.paths import PathKind
from wavry.connectivity.presence import HostPresence
from wavry.net.client import ClientConnection
from wavry.net.host import HostServer
from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.events import ClientState
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    data = tmp_path_factory.mktemp("gw")
    port = free_port()
    stun = free_port(__import__("socket").SOCK_DGRAM)
    gw = start_gateway(data, "127.0.0.1", port, stun_port=stun)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    relay = start_relay(url, "127.0.0.1", free_port(__import__("socket").SOCK_DGRAM))
    cp = ControlPlane(gw, relay, url)
    yield cp
    cp.stop()


@dataclass
class HostStub:
    """The parts of a host runtime the presence uses."""

    identity: Identity
    endpoint: HostEndpoint
    server: HostServer
    bound: tuple[str, int] | None = None
    said: list[str] = field(default_factory=list)
    events: list[ev.HostEvent] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.said.append(text)


async def _account(url: str, username: str, host: Identity, client: Identity) -> None:
    async with GatewayClient(url) as gw:
        res = await gw.register(f"{username}@example.org", username, PASSWORD, username)
        await gw.add_device(host, str(res.user["id"]), "box", "client")  # `wavry login` on it
        await gw.add_device(client, str(res.user["id"]), "laptop", "client")


@contextlib.asynccontextmanager
async def _host_online(
    url: str, username: str, name: str, config_name: str = "box"
) -> AsyncIterator[tuple[Identity, Identity, HostStub, HostPresence]]:
    """A new account with a host device (sharing as ``name``, online) and a client device."""
    host_id, client_id = Identity.generate(), Identity.generate()
    await _account(url, username, host_id, client_id)
    endpoint = HostEndpoint(host_id, HostConfig(name=config_name))
    stub = HostStub(host_id, endpoint, HostServer(endpoint))
    stub.server._on_event = stub.events.append
    stub.bound = await stub.server.start("127.0.0.1", 0)
    presence = HostPresence(url, name)
    await presence.start(stub)
    try:
        assert await presence.wait_online(10), stub.said
        yield host_id, client_id, stub, presence
    finally:
        await presence.close()
        await stub.server.close()


def test_connect_by_name_through_the_gateway(
    plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    async def run() -> None:
        online = _host_online(plane.url, "alice", "studio")
        async with online as (host_id, client_id, stub, presence):
            target = await find_host(plane.url, "studio", client_id)
            assert target.host.wavry_id == host_id.wavry_id
            with pytest.raises(DialError, match="no host named 'nope'"):
                await find_host(plane.url, "nope", client_id)
            # `wavry connect` right after `wavry host` starts: the name is waited for
            said: list[str] = []
            later = asyncio.ensure_future(
                find_host(
                    plane.url, "attic", client_id, wait_s=8, wait_unknown=True, waiting=said.append
                )
            )
            await asyncio.sleep(0.3)
            assert not later.done() and said and "waiting" in said[0]
            attic = HostPresence(plane.url, "attic")
            attic_id = Identity.generate()
            async with GatewayClient(plane.url) as gw:
                res = await gw.login("alice", PASSWORD)
                await gw.add_device(attic_id, str(res.user["id"]), "attic", "client")
            attic_ep = HostEndpoint(attic_id, HostConfig(name="attic"))
            attic_stub = HostStub(attic_id, attic_ep, HostServer(attic_ep))
            attic_stub.bound = await attic_stub.server.start("127.0.0.1", 0)
            await attic.start(attic_stub)
            assert (await asyncio.wait_for(later, 10)).host.wavry_id == attic_id.wavry_id
            await attic.close()
            await attic_stub.server.close()

            started = time.monotonic()
            route = GatewayRoute(target, client_id, timeout=5)
            session = ClientSession(client_id, ClientConfig(name="laptop"), host_id.wavry_id)
            conn = await route.open(session)
            try:
                accepted = None
                while accepted is None:
                    event = await conn.next_event(5)
                    if isinstance(event, ev.SessionAccepted):
                        accepted = event
                    assert not isinstance(event, (ev.SessionRejected, ev.SessionClosed)), event
                took = time.monotonic() - started
                # on loopback the host candidate answers first: a direct path, no pairing
                assert conn.paths.kind in (PathKind.direct, PathKind.punched)
                assert conn.paths.changes[0].reason == "first answer"
                assert took < 3.0, took
                assert presence.vouches(client_id.wavry_id)
                assert not any(isinstance(e, ev.PairingCodeIssued) for e in stub.events)
                # meanwhile a stranger dialling the address still has to pair
                stranger = ClientConnection(ClientSession(Identity.generate(), ClientConfig()))
                assert stub.bound is not None
                await stranger.start(*stub.bound)
                try:
                    while True:
                        e = await stranger.next_event(5)
                        if isinstance(e, ev.SessionRejected):
                            assert e.reason == rift_pb2.PAIRING_REQUIRED
                            break
                finally:
                    await stranger.close()
                assert conn.core.state is ClientState.ACTIVE  # the gateway client streams on
            finally:
                await conn.close()

    asyncio.run(asyncio.wait_for(run(), 60))


def test_a_browser_connect_gets_the_web_endpoint_or_no_web(
    plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONTROL_PLANE.md §6 "From a browser": a page's `connect` with `transport: "web"` is
    answered with the web endpoint's certificate hash and addresses (`wavry host --web`), or
    `reject` `no_web` without one; either way the page's device is vouched for."""
    import base64
    import uuid

    from wavry.connectivity.signaling import Signaling
    from wavry.web.endpoint import WebService

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    async def run() -> None:
        online = _host_online(plane.url, "carol", "desk", "desk")
        async with online as (host_id, page_id, stub, presence):
            page: Signaling | None = None
            web = WebService(("127.0.0.1", 0))
            try:
                async with GatewayClient(plane.url) as gw:
                    token = (await gw.login("carol", PASSWORD)).token
                page = await Signaling.open(plane.url, token, page_id.wavry_id, "client")

                async def ask() -> dict[str, object]:
                    assert page is not None
                    sid = str(uuid.uuid4())
                    await page.send({"type": "connect", "session": sid, "host": host_id.wavry_id,
                                     "candidates": [], "transport": "web"})  # fmt: skip
                    while True:
                        msg = await asyncio.wait_for(page.recv(), 10)
                        if msg.get("session") == sid:
                            return msg

                answer = await ask()
                assert answer["type"] == "reject" and answer["reason"] == "no_web"
                assert presence.vouches(page_id.wavry_id)
                stub.services = [web]  # type: ignore[attr-defined]
                opts = type("Opts", (), {"config_dir": tmp_path})()
                stub.opts = opts  # type: ignore[attr-defined]
                await web.start(stub)
                assert web.endpoint is not None and web.endpoint.bound is not None
                answer = await ask()
                assert answer["type"] == "accept" and answer["host_wavry_id"] == host_id.wavry_id
                rendezvous = answer["web"]
                assert isinstance(rendezvous, dict)
                cert = web.endpoint.certificate
                assert cert is not None
                digest = base64.urlsafe_b64encode(cert.sha256).rstrip(b"=").decode()
                assert rendezvous["cert_sha256"] == digest
                port = web.endpoint.bound[1]
                assert {"kind": "host", "addr": f"127.0.0.1:{port}"} in rendezvous["candidates"]
            finally:
                if page is not None:
                    await page.close()
                await web.close()

    asyncio.run(asyncio.wait_for(run(), 60))


def test_a_socket_replaced_before_it_was_ready_is_opened_anew(
    plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two signaling sockets of one device and role that authenticate at the same time: the
    gateway may close the first with ``replaced`` before its ``ready`` (CONTROL_PLANE.md §3).
    The socket a lookup opened ahead failing that way is no failed connect: the route opens a
    fresh one. (The gateway's side of that race is played by a socket server that answers the
    auth with that error; its timing cannot be forced on the real gateway.)"""
    import json
    from dataclasses import replace

    from websockets.asyncio.server import ServerConnection, serve

    from wavry.connectivity.signaling import Signaling, SignalingClosed

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    async def replaced_at_once(ws: ServerConnection) -> None:
        await ws.recv()  # auth
        await ws.send(json.dumps({"type": "error", "code": "replaced",
                                  "message": "this device connected again"}))  # fmt: skip
        await ws.close(1008)

    async def run() -> None:
        async with _host_online(plane.url, "dave", "den", "den") as (host_id, client_id, _, _):
            found = await find_host(plane.url, "den", client_id)
            assert found.signaling is not None
            await (await found.signaling).close()  # the real one opened ahead: unused here
            async with serve(replaced_at_once, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                url = f"http://127.0.0.1:{port}"
                racing = asyncio.ensure_future(
                    Signaling.open(url, found.token, client_id.wavry_id, "client")
                )
                with pytest.raises(SignalingClosed, match="connected again"):
                    await racing
            route = GatewayRoute(replace(found, signaling=racing), client_id, timeout=5)
            session = ClientSession(client_id, ClientConfig(name="laptop"), host_id.wavry_id)
            conn = await route.open(session)
            try:
                while not isinstance(event := await conn.next_event(5), ev.SessionAccepted):
                    assert not isinstance(event, (ev.SessionRejected, ev.SessionClosed)), event
            finally:
                await conn.close()

    asyncio.run(asyncio.wait_for(run(), 60))
