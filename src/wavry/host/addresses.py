"""The addresses a client can reach this host at, for the banner's `wavry connect ADDR:PORT`."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from wavry.net.addr import format_hostport

__all__ = ["connect_addresses", "machine_addresses"]


def machine_addresses() -> list[str]:
    """This machine's interface addresses (IPv4 and IPv6; no link-local: a peer would need the
    interface's scope to use one), other machines' first and loopback last."""
    import ifaddr  # a small pure-Python getifaddrs(); the standard library has no equivalent

    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                continue
            if addr.is_link_local or addr.is_multicast or addr.is_unspecified or addr in found:
                continue
            found.append(addr)
    found.sort(key=lambda a: (a.is_loopback, a.version))
    return [str(a) for a in found]


def _dual_stack() -> bool:
    """A socket bound to :: also takes IPv4 (Linux's default, net.ipv6.bindv6only = 0)."""
    try:
        return Path("/proc/sys/net/ipv6/bindv6only").read_text().strip() == "0"
    except OSError:
        return False


def connect_addresses(bound_host: str, port: int) -> list[str]:
    """``ADDR:PORT`` for each address a client can use: the bound one, or on a wildcard listen
    every address of this machine of that family (IPv4 too for :: when dual-stack)."""
    if bound_host not in ("0.0.0.0", "::"):
        return [format_hostport(bound_host, port)]
    try:
        addrs = machine_addresses()
    except (OSError, ValueError):  # the banner must not stop the host: loopback then
        addrs = []
    v6 = bound_host == "::"
    usable = [a for a in addrs if (":" in a) == v6 or (v6 and ":" not in a and _dual_stack())]
    if not usable:
        usable = ["::1" if v6 else "127.0.0.1"]
    return [format_hostport(a, port) for a in usable]
