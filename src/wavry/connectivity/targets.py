"""What `wavry connect [TARGET]` reaches: an address, a host of the account (through the
gateway), or — with no target — a host picked from the LAN and the account's list.

Rules: ``HOST:PORT``, an IP address or a bracketed IPv6 address is an address. A name is looked
up among the account's hosts when a gateway is known (``--gateway``, or the one `wavry login`
saved); with ``--gateway`` only there, otherwise a name the account does not have is tried as a
DNS name. Without a target, hosts that answer on the LAN (mDNS) and the account's online hosts
are listed and the user picks one (at a terminal; elsewhere the list is the error message).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wavry.account.client import HostEntry
from wavry.connectivity.dial import (
    DialError,
    GatewayRoute,
    GatewayTarget,
    HostUnavailable,
    account_hosts,
    find_host,
    is_host_name,
    sign_in,
)
from wavry.connectivity.mdns import LanHost, discover
from wavry.net.addr import AddressError, format_hostport, parse_hostport
from wavry.rift.identity import Identity

__all__ = ["Choice", "Resolved", "TargetError", "resolve_target"]

LAN_SECONDS = 1.5


class TargetError(ConnectionError):
    """The target cannot be reached or chosen; the message says why."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """An address (``route`` None) or a gateway route; ``host_id`` is the identity the RIFT
    handshake must show (from the gateway or the LAN advertisement), None for an address (the
    pin decides)."""

    host: str
    port: int
    host_id: str | None
    route: GatewayRoute | None
    label: str


@dataclass(frozen=True, slots=True)
class Choice:
    label: str
    detail: str
    lan: LanHost | None = None
    account: HostEntry | None = None


Ask = Callable[[list[Choice]], Awaitable[int | None]]


async def resolve_target(
    target: str | None,
    gateway: str | None,
    identity: Identity,
    *,
    default_port: int,
    saved_gateway: str | None,
    ask: Ask | None,
    timeout: float = 10.0,
    say: Callable[[str], None] | None = None,
) -> Resolved:
    if target is None:
        return await _pick(gateway or saved_gateway, identity, ask, default_port, timeout)
    if not is_host_name(target):
        try:
            host, port = parse_hostport(target, default_port)
        except AddressError as exc:
            raise TargetError(str(exc)) from None
        return Resolved(host, port, None, None, format_hostport(host, port))
    url = gateway or saved_gateway
    if url is None:
        host, port = parse_hostport(target, default_port)
        return Resolved(host, port, None, None, target)
    try:
        found = await find_host(
            url, target, identity, wait_s=timeout, wait_unknown=gateway is not None, waiting=say
        )
    except HostUnavailable as exc:
        if gateway is None and not exc.known and "/" not in target:
            return Resolved(target, default_port, None, None, target)  # a DNS name, then
        raise TargetError(str(exc)) from None
    except DialError as exc:
        raise TargetError(str(exc)) from None
    return _via_gateway(found, identity, timeout)


def _via_gateway(found: GatewayTarget, identity: Identity, timeout: float) -> Resolved:
    route = GatewayRoute(found, identity, timeout=timeout)
    return Resolved("", 0, found.host.wavry_id, route, route.address)


async def _pick(
    gateway: str | None, identity: Identity, ask: Ask | None, default_port: int, timeout: float
) -> Resolved:
    lan_task = asyncio.ensure_future(discover(LAN_SECONDS))
    account: list[HostEntry] = []
    token = ""
    problem = ""
    if gateway is not None:
        try:
            token, _ = await sign_in(gateway, identity)
            account = [h for h in (await account_hosts(gateway, token) or []) if h.online]
        except DialError as exc:
            problem = str(exc)
    try:
        lan = await lan_task
    except Exception:
        lan = []
    choices = [
        Choice(h.name, f"LAN {format_hostport(h.addresses[0], h.port)}", lan=h)
        for h in lan
        if h.addresses and h.wavry_id != identity.wavry_id
    ]
    seen = {c.lan.wavry_id for c in choices if c.lan is not None}
    for h in account:
        label = f"{h.owner}/{h.name}" if h.owner else h.name
        if h.wavry_id not in seen and h.wavry_id != identity.wavry_id:
            choices.append(Choice(label, f"via {gateway}", account=h))
    if not choices:
        where = "on this LAN" + (f" or online at {gateway}" if gateway else "")
        raise TargetError(
            f"no host found {where}; give HOST[:PORT] or a host name"
            + (f" ({problem})" if problem else "")
        )
    if ask is None:
        names = ", ".join(f"{c.label} ({c.detail})" for c in choices)
        raise TargetError(f"no target given; hosts found: {names}. Say which: wavry connect NAME")
    index = await ask(choices)
    if index is None or not 0 <= index < len(choices):
        raise TargetError("no host chosen")
    chosen = choices[index]
    if chosen.lan is not None:
        lan_host = chosen.lan
        return Resolved(
            lan_host.addresses[0], lan_host.port, lan_host.wavry_id, None, f"{lan_host.name} (LAN)"
        )
    assert chosen.account is not None and gateway is not None
    return _via_gateway(GatewayTarget(gateway, token, chosen.account), identity, timeout)


async def ask_at_terminal(choices: list[Choice]) -> int | None:
    """Print the list on stderr and read a number from the terminal."""
    for i, c in enumerate(choices, 1):
        print(f"  {i}. {c.label:24} {c.detail}", file=sys.stderr, flush=True)
    from wavry.runtime.session import read_line

    answer = await read_line(f"Connect to which host [1-{len(choices)}]? ")
    with contextlib.suppress(ValueError, AttributeError):
        return int((answer or "").strip()) - 1
    return None


def terminal_ask() -> Ask | None:
    return ask_at_terminal if sys.stdin.isatty() else None
