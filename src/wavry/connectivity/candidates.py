"""Candidates (docs/spec/CONTROL_PLANE.md §3, §6): the addresses a peer may be reached at.

A candidate is ``{"kind": "host"|"srflx"|"relay", "addr": "ip:port"}``: ``host`` for an address
of the RIFT socket's own interfaces, ``srflx`` for the address a NAT maps that socket to (the
gateway's STUN answer, or a port mapping the router granted over UPnP-IGD). Everything here is
pure: parsing what a peer sent refuses anything that is not an IP literal and a port, so a
candidate can never make us resolve a name or send to a port-0 or multicast address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wavry.net.addr import format_hostport

__all__ = [
    "Address",
    "Candidate",
    "CandidateError",
    "CandidateKind",
    "host_candidates",
    "interface_addresses",
    "parse_candidates",
]

Address = tuple[str, int]

#: at most this many candidates are taken from a peer (the gateway allows 32)
MAX_CANDIDATES = 32


class CandidateError(ValueError):
    """A candidate a peer sent that cannot be used."""


class CandidateKind(StrEnum):
    host = "host"
    srflx = "srflx"
    relay = "relay"


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: CandidateKind
    addr: Address

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "addr": format_hostport(*self.addr)}

    @classmethod
    def from_json(cls, obj: Any) -> Candidate:
        if not isinstance(obj, dict):
            raise CandidateError("a candidate is an object with kind and addr")
        try:
            kind = CandidateKind(str(obj.get("kind")))
        except ValueError:
            raise CandidateError(f"unknown candidate kind {obj.get('kind')!r}") from None
        text = obj.get("addr")
        if not isinstance(text, str):
            raise CandidateError("candidate addr must be a string")
        return cls(kind, parse_ip_port(text))


def parse_ip_port(text: str) -> Address:
    """``1.2.3.4:5`` or ``[::1]:5`` → (ip, port); only IP literals, ports 1..65535, unicast."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise CandidateError(f"expected [IPV6]:PORT, got {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            raise CandidateError(f"expected IP:PORT, got {text!r}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise CandidateError(f"{host!r} is not an IP address") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise CandidateError(f"bad port in {text!r}")
    if ip.is_multicast or ip.is_unspecified or (ip.version == 4 and str(ip) == "255.255.255.255"):
        raise CandidateError(f"{host} is not a unicast address")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(port_text)


def parse_candidates(raw: Any) -> list[Candidate]:
    """A peer's candidate list; unusable entries are skipped (one bad entry does not spoil the
    rest), duplicates dropped, at most ``MAX_CANDIDATES`` kept."""
    if not isinstance(raw, list):
        return []
    out: list[Candidate] = []
    seen: set[Address] = set()
    for obj in raw[:MAX_CANDIDATES]:
        try:
            c = Candidate.from_json(obj)
        except CandidateError:
            continue
        if c.addr not in seen:
            seen.add(c.addr)
            out.append(c)
    return out


def interface_addresses(include_loopback: bool = False) -> list[str]:
    """This machine's unicast IPv4 addresses (ifaddr), loopback and link-local left out unless
    asked for. IPv4 only: the relay, the gateway's STUN and the test beds are IPv4, and a
    peer's IPv6 global address, when it has one, is reachable without punching anyway."""
    import ifaddr

    out: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):
                continue  # IPv6 entries are tuples
            addr = ipaddress.IPv4Address(ip.ip)
            if addr.is_link_local or addr.is_unspecified or addr.is_multicast:
                continue
            if addr.is_loopback and not include_loopback:
                continue
            if ip.ip not in out:
                out.append(ip.ip)
    return out


def host_candidates(bound: Address, addresses: Iterable[str] | None = None) -> list[Candidate]:
    """``host`` candidates of a socket bound to ``bound``: its own address when it is bound to
    one, else every interface address with its port."""
    host, port = bound
    if host not in ("0.0.0.0", "", "::"):
        return [Candidate(CandidateKind.host, (host, port))]
    addrs = interface_addresses() if addresses is None else list(addresses)
    return [Candidate(CandidateKind.host, (a, port)) for a in addrs]
