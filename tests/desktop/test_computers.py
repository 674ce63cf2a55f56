"""The Computers view's lists against a real gateway: the account's hosts with their state (offline
and when last seen, online while the host's signaling socket is open), a host another account
shared (by whom), this computer left out; recent connections (connect, forget); the address
field refusing what is not an address."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets
from PySide6.QtCore import Qt

from tests.desktop.conftest import click, run, type_into, until
from wavry.account.client import GatewayClient
from wavry.desktop.discovery import NO_LAN_DISCOVERY, reach_by_name_available
from wavry.rift.identity import Identity

PASSWORD = "correct horse battery staple 42"


async def account_with_host(url: str, username: str, host_name: str) -> tuple[str, Identity]:
    """Another account with one host device: (its token, the host's identity)."""
    identity = Identity.generate()
    async with GatewayClient(url) as gw:
        res = await gw.register(f"{username}@example.org", username, PASSWORD, username)
        await gw.add_device(identity, str(res.user["id"]), host_name, "host")
        return res.token, identity


async def online(ws_url: str, token: str, identity: Identity) -> Any:
    """The host's presence: its signaling socket, authenticated as role host."""
    ws = await websockets.connect(ws_url)
    await ws.send(json.dumps({"type": "auth", "token": token, "wavry_id": identity.wavry_id,
                              "role": "host"}))  # fmt: skip
    ready = json.loads(await ws.recv())
    assert ready["type"] == "ready", ready
    return ws


def find(view: Any, name: str) -> list[Any]:
    return view.tree.findItems(name, Qt.MatchFlag.MatchExactly, 0)


def rows(view: Any) -> dict[str, list[str]]:
    out = {}
    for i in range(view.tree.topLevelItemCount()):
        item = view.tree.topLevelItem(i)
        out[item.text(0)] = [item.text(c) for c in range(4)]
    return out


def test_account_hosts_with_state_and_shares(desk: Any, gateway: Any, shot: Any) -> None:
    view = desk.window.computers
    sockets: list[Any] = []

    async def scenario() -> None:
        await desk.account.register(gateway.url, "ada@example.org", "ada", PASSWORD)
        token = desk.account.account.token
        # a second computer of ada's, and bob's host shared with ada
        ada_pc = Identity.generate()
        async with GatewayClient(gateway.url, token) as gw:
            await gw.add_device(ada_pc, desk.account.account.user_id, "den", "host")
        bob_token, bob_host = await account_with_host(gateway.url, "bob", "workshop")
        async with httpx.AsyncClient() as http:
            r = await http.put(f"{gateway.url}/v1/devices/{bob_host.wavry_id}/shares/ada",
                               headers={"Authorization": f"Bearer {bob_token}"})  # fmt: skip
            assert r.status_code == 204, r.text
        desk.window.show()
        desk.window.show_view("computers")  # polls the account's hosts while shown
        await until(lambda: "den" in rows(view), what="the account's host")
        assert rows(view)["den"][1:3] == ["your account", "offline, seen never"]
        assert rows(view)["bob/workshop"][1:3] == ["shared by bob", "offline, seen never"]
        listed = [view.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                  for i in range(view.tree.topLevelItemCount())]  # fmt: skip
        ids = {t.wavry_id for t in listed if t is not None}
        assert view.this_id not in ids  # this computer (a host device too) is not offered
        assert {ada_pc.wavry_id, bob_host.wavry_id} <= ids
        # an offline host cannot be connected to
        item = find(view, "den")[0]
        view.tree.setCurrentItem(item)
        assert not view.connect_button.isEnabled()
        view.open(item.data(0, Qt.ItemDataRole.UserRole))
        assert "den is offline" in view.banner.label.text()
        # it comes online: the list says so within the polling period
        sockets.append(await online(gateway.ws_url, token, ada_pc))
        await until(lambda: rows(view)["den"][2] == "online", 15, "den online")
        assert view.banner.text == ""  # "den is offline" went with it
        view.tree.setCurrentItem(find(view, "den")[0])
        if reach_by_name_available():
            assert view.connect_button.isEnabled()
        else:  # no way to dial it by name in this version: said, instead of failing on click
            assert not view.connect_button.isEnabled()
            assert "den through the gateway is not in this version" in view.status.text()
        shot(desk.window, "computers")
        await sockets.pop().close()
        await until(lambda: rows(view)["den"][2].startswith("offline, seen "), 15, "den offline")
        assert "never" not in rows(view)["den"][2]

    try:
        run(desk, scenario(), 90)
    finally:
        for ws in sockets:
            run(desk, ws.close())


def test_recent_connections_and_the_address_field(desk: Any) -> None:
    desk.prefs.remember("192.0.2.7:47800", "attic", "a" * 43)
    view = desk.window.computers
    started: list[tuple[str, Any, str]] = []
    desk.stream.start = lambda target, host_id=None, label="", extra=None: started.append(
        (target, host_id, label)
    )

    async def scenario() -> None:
        desk.window.show()
        desk.window.show_view("computers")
        view.refresh()
        if not view.lan_available:  # the note spans the table (not cut at "Computer"), no button
            note = view.tree.findItems(f"    {NO_LAN_DISCOVERY}", Qt.MatchFlag.MatchExactly, 0)
            assert note and note[0].isFirstColumnSpanned() and not view.search_button.isVisible()
        item = find(view, "attic")[0]
        assert item.text(1) == "192.0.2.7:47800" and item.text(2) == "just now"
        view.tree.setCurrentItem(item)
        assert view.connect_button.isEnabled() and view.forget_button.isEnabled()
        click(view.connect_button)
        assert started == [("192.0.2.7:47800", "a" * 43, "attic")]
        click(view.forget_button)
        assert not find(view, "attic")
        assert desk.prefs.desktop().recent == []
        for bad in ("", "two words"):
            type_into(view.address, bad)
            view.connect_typed()
            assert "Type an address" in view.banner.label.text()
        type_into(view.address, "192.0.2.9")
        view.connect_typed()
        assert started[-1] == ("192.0.2.9", None, "192.0.2.9")
        await asyncio.sleep(0)

    run(desk, scenario())
