"""Parsing of HOST:PORT strings given by users."""

from __future__ import annotations

import ipaddress


class AddressError(ValueError):
    """A HOST:PORT string that cannot be used."""


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """'1.2.3.4', '1.2.3.4:5', 'name:5', '[::1]:5' or '::1' → (host, port)."""
    text = text.strip()
    if not text:
        raise AddressError("empty address")
    host, port_s = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError(f"unterminated IPv6 address in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise AddressError(f"expected ':PORT' after ']' in {text!r}")
            port_s = rest[1:]
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    if not host:
        raise AddressError(f"missing host in {text!r}")
    if not port_s:
        return host, default_port
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise AddressError(f"bad port {port_s!r} in {text!r} (0..65535)")
    return host, int(port_s)


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_endpoint(text: str, *, allow_zero: bool = True) -> tuple[str, int]:
    """A listen/connect endpoint that must name its port: 'HOST:PORT' or '[IPV6]:PORT'."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise AddressError(f"expected [IPV6]:PORT, got {text!r}")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"{host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host:
            raise AddressError(f"expected HOST:PORT (IPv6 as [ADDR]:PORT), got {text!r}")
    if not port_text.isdigit() or not (0 if allow_zero else 1) <= int(port_text) <= 65535:
        raise AddressError(f"bad port in {text!r}")
    return host, int(port_text)
