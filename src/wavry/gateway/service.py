"""Running the gateway from its settings (the `wavry gateway` command is in wavry.gateway.cli)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from wavry.gateway.settings import ConfigError, GatewaySettings, parse_host_port

__all__ = ["Fatal", "run_loop", "serve", "setup_logging"]

log = logging.getLogger("wavry.gateway")


class Fatal(Exception):
    """A runtime failure reported as one line, exit status 1."""


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level_name: str, as_json: bool) -> int:
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise ConfigError(f"--log-level: unknown level {level_name!r}")
    handler = logging.StreamHandler()
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(_JsonFormatter() if as_json else logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    return level


def _fmt(addr: tuple[Any, ...]) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"


def _bind(listen: str) -> socket.socket:
    host, port = parse_host_port(listen, "--listen")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Fatal(f"cannot listen on tcp {listen}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(settings: GatewaySettings, level: int = logging.INFO) -> None:
    """Prepare (migrate, Redis, STUN), bind, print the addresses, serve until signalled."""
    import uvicorn

    from wavry.gateway.app import StartupError, create_app, startup

    try:
        app = create_app(settings)
    except OSError as exc:
        raise Fatal(f"data directory / key files: {exc}") from None
    state = app.state.gw
    try:
        await startup(state)
    except StartupError as exc:
        await state.engine.dispose()
        raise Fatal(str(exc)) from None
    sock = _bind(settings.listen)
    addr = _fmt(sock.getsockname())
    stun = _fmt(state.stun_addr) if state.stun_addr else "-"
    print(
        f"wavry gateway: listening on http://{addr} (signaling ws://{addr}/v1/signal, "
        f"admin http://{addr}/admin); STUN on udp {stun}; "
        f"database {settings.db_url().split('://')[0]}"
        + (", redis pub/sub" if settings.redis_url else "")
        + f"; public URL {settings.public_base_url()}",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        loop="none",
        ws="websockets-sansio",
        ws_max_size=1024 * 1024,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        log_level=level,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        server_header=False,
        # X-Forwarded-For is the gateway's business (only from --trusted-proxies): uvicorn's
        # default would trust it from 127.0.0.1 and let any local client pick its address.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    await server.serve(sockets=[sock])


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if sys.platform != "win32":
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    runner(coro)
