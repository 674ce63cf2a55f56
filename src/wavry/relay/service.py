"""Running a relay from its settings (the `wavry relay` command is in wavry.relay.cli)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavry.controlplane.lease import LeaseKeyError, LeaseVerifier, key_id, load_public_key
from wavry.net.addr import AddressError, parse_endpoint
from wavry.relay.http import RelayHttpServer, render_relay_metrics
from wavry.relay.registration import (
    GatewayClient,
    GatewayError,
    Registration,
    RegistrationLoop,
    RelayInfo,
)
from wavry.relay.server import RelayConfig, RelayServer

__all__ = ["ConfigError", "Fatal", "build_settings", "parse_host_port", "run_loop", "serve"]

log = logging.getLogger("wavry.relay")


class ConfigError(Exception):
    """Bad configuration: reported as one line, exit status 2."""


class Fatal(Exception):
    """A runtime failure reported as one line, exit status 1."""


def parse_host_port(value: str, what: str, allow_zero: bool = True) -> tuple[str, int]:
    """Parse ``HOST:PORT`` / ``[V6]:PORT`` (port 0 = any free port unless refused)."""
    try:
        return parse_endpoint(value, allow_zero=allow_zero)
    except AddressError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


@dataclass
class _Settings:
    listen: tuple[str, int]
    http_listen: tuple[str, int]
    relay_id: str
    public_addr: str
    region: str
    max_sessions: int
    max_bitrate_kbps: int
    gateway: str | None
    token: str | None
    static_keys: dict[str, Any]


def build_settings(
    listen: str,
    public_addr: str | None,
    gateway: str | None,
    token: str | None,
    http_listen: str,
    region: str,
    max_sessions: int,
    max_bitrate_kbps: int,
    lease_public_key: Path | None,
    relay_id: str | None,
) -> _Settings:
    bind = parse_host_port(listen, "--listen")
    http_bind = parse_host_port(http_listen, "--http-listen")
    if max_sessions < 1:
        raise ConfigError("--max-sessions must be >= 1")
    if max_bitrate_kbps < 1:
        raise ConfigError("--max-bitrate-kbps must be >= 1")
    if public_addr:
        parse_host_port(public_addr, "--public-addr", allow_zero=False)
    elif not _is_wildcard(bind[0]) and bind[1] != 0:
        public_addr = listen.strip()
    static: dict[str, Any] = {}
    if lease_public_key is not None:
        try:
            pub = load_public_key(lease_public_key)
        except LeaseKeyError as exc:
            raise ConfigError(f"--lease-public-key: {exc}") from None
        static[key_id(pub)] = pub
    if gateway:
        if not token:
            raise ConfigError("--gateway needs --token (or WAVRY_RELAY_TOKEN)")
        if not public_addr:
            raise ConfigError("--gateway needs --public-addr HOST:PORT (the address peers use)")
        try:
            GatewayClient(gateway, token)
        except ValueError as exc:
            raise ConfigError(f"--gateway: {exc}") from None
        relay_id = relay_id or socket.gethostname()
    elif not static:
        raise ConfigError(
            "no lease key source: give --gateway URL --token TOKEN, "
            "or --lease-public-key FILE --relay-id ID"
        )
    elif not relay_id:
        raise ConfigError("--lease-public-key needs --relay-id (the rid claim leases carry)")
    assert relay_id is not None
    return _Settings(
        listen=bind,
        http_listen=http_bind,
        relay_id=relay_id,
        public_addr=public_addr or "",
        region=region,
        max_sessions=max_sessions,
        max_bitrate_kbps=max_bitrate_kbps,
        gateway=gateway or None,
        token=token,
        static_keys=static,
    )


def _fmt(addr: tuple[Any, ...]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


async def serve(s: _Settings) -> None:
    verifier = LeaseVerifier(s.static_keys, s.relay_id)
    config = RelayConfig(
        relay_id=s.relay_id, max_sessions=s.max_sessions, max_bitrate_kbps=s.max_bitrate_kbps
    )
    server = RelayServer(config, verifier)
    try:
        udp = await server.start(*s.listen)
    except OSError as exc:
        raise Fatal(f"cannot listen on udp {_fmt(s.listen)}: {exc.strerror or exc}") from None
    http = RelayHttpServer(
        lambda: render_relay_metrics(server),
        lambda: server.running and bool(verifier.key_ids),
    )
    try:
        http_addr = await http.start(*s.http_listen)
    except OSError as exc:
        server.close()
        raise Fatal(f"cannot listen on tcp {_fmt(s.http_listen)}: {exc.strerror or exc}") from None
    print(
        f"wavry relay {s.relay_id}: relaying on udp {_fmt(udp)}; "
        f"health/ready/metrics on http://{_fmt(http_addr)}/",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[Any]] = [loop.create_task(stop.wait())]
    if s.gateway and s.token:

        def installed(reg: Registration) -> None:
            verifier.add_key(reg.key_id, reg.lease_public_key)

        reg_loop = RegistrationLoop(
            GatewayClient(s.gateway, s.token),
            RelayInfo(s.relay_id, s.public_addr, s.region, s.max_sessions, s.max_bitrate_kbps),
            on_registered=installed,
            load=lambda: (server.load_pct, server.session_count),
        )
        tasks.append(loop.create_task(reg_loop.run()))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            err = task.exception()
            if isinstance(err, GatewayError):
                raise Fatal(f"gateway refused registration: {err}")
            if err is not None:
                raise err
    finally:
        for task in tasks:
            task.cancel()
        server.close()
        await http.close()


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if sys.platform != "win32":
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    runner(coro)
