"""The FastAPI app factory: lifespan (database, migrations, Redis, STUN), limits, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wavry import __version__
from wavry.controlplane import KeyedRateLimiter
from wavry.controlplane.lease import LeaseSigner, load_or_create_private_key
from wavry.controlplane.stun import start_stun_server
from wavry.gateway import accounts, admin, api, devices, relays, shares, signaling, webapp
from wavry.gateway.clientip import ClientAddresses, limit_key, parse_networks
from wavry.gateway.db import make_engine, migrate, prepare_sqlite_file, private_dir, sessionmaker
from wavry.gateway.errors import error_response, install_error_handlers
from wavry.gateway.lockout import LoginLockout
from wavry.gateway.metrics import Metrics
from wavry.gateway.security import Passwords, TotpBox
from wavry.gateway.settings import GatewaySettings, parse_host_port
from wavry.gateway.state import GatewayState

__all__ = ["StartupError", "create_app", "load_totp_key", "startup"]

log = logging.getLogger("wavry.gateway")


def load_totp_key(settings: GatewaySettings) -> str:
    """The configured TOTP key, else one generated once and kept in the data dir (dev only)."""
    if settings.totp_key:
        return settings.totp_key
    path = settings.base_dir() / "gateway-totp.key"
    if path.exists():
        return path.read_text("ascii").strip()
    key = TotpBox.generate_key()
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def build_state(settings: GatewaySettings) -> GatewayState:
    key = load_or_create_private_key(settings.resolved_lease_key())
    prepare_sqlite_file(settings.db_url())
    engine = make_engine(settings.db_url())
    db = sessionmaker(engine)
    state = GatewayState(
        settings=settings,
        engine=engine,
        db=db,
        passwords=Passwords(
            settings.argon2_concurrency,
            executor=settings.argon2_executor,
            nice=settings.argon2_nice,
            queue=settings.argon2_queue,
        ),
        totp=TotpBox(load_totp_key(settings)),
        signer=LeaseSigner(key),
        metrics=Metrics(),
        lockout=LoginLockout(db, settings.lockout_failures, settings.lockout_seconds),
        addresses=ClientAddresses(parse_networks(settings.trusted_proxies)),
        rate=KeyedRateLimiter(settings.rate_per_ip, settings.rate_burst),
        auth_rate=KeyedRateLimiter(settings.auth_rate_per_ip, settings.auth_rate_burst),
        hub=signaling.Hub(),
        relays=None,  # type: ignore[arg-type]
    )
    state.hub.state = state
    state.relays = relays.RelayRegistry(state)
    return state


async def _housekeeping(state: GatewayState) -> None:
    while True:
        await asyncio.sleep(min(5.0, max(1.0, state.relays.interval_s)))
        try:
            now = time.time()
            await state.hub.refresh_presence()
            await state.hub.revalidate_tokens()
            await state.relays.expire()
            await state.lockout.purge(now)
            await devices.purge_device_logins(state, now)
        except Exception as exc:
            log.warning("housekeeping failed: %s", exc)


class StartupError(Exception):
    """Database, Redis or STUN socket unusable at start (one line for the operator)."""


async def startup(state: GatewayState) -> asyncio.DatagramTransport | None:
    """Migrate, connect Redis and bind STUN; idempotent (the CLI calls it before serving)."""
    if state.stun_addr is not None:
        return state.stun_transport
    settings = state.settings
    try:
        await migrate(state.engine)
    except Exception as exc:
        raise StartupError(f"database {_safe_url(settings.db_url())}: {_first_line(exc)}") from None
    try:
        await state.hub.start()
    except Exception as exc:
        raise StartupError(f"redis {settings.redis_url}: {_first_line(exc)}") from None
    stun_listen = settings.resolved_stun_listen()
    stun_host, stun_port = parse_host_port(stun_listen, "--stun-listen")
    try:
        transport, _ = await start_stun_server(stun_host, stun_port)
    except OSError as exc:
        raise StartupError(
            f"cannot listen on udp {stun_listen} (STUN): {exc.strerror or exc}"
        ) from None
    state.stun_transport = transport
    state.stun_addr = tuple(transport.get_extra_info("sockname"))
    await state.relays.listing()
    await state.passwords.warm_up()
    return transport


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _safe_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        return f"{scheme}{sep}{creds.split(':')[0]}:***@{host}"
    return url


async def _loop_lag(state: GatewayState, period: float = 0.02) -> None:
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(period)
        state.metrics.loop_lag.observe(max(0.0, loop.time() - start - period))


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (each signaling socket is a file)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = max(soft, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    except (ImportError, OSError, ValueError):
        return -1


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway app; the lifespan connects, migrates and starts STUN."""
    settings.validate_all()
    raise_fd_limit()
    private_dir(Path(settings.base_dir()))
    state = build_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        transport = await startup(state)
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(_housekeeping(state)), loop.create_task(_loop_lag(state))]
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            for task in tasks:
                task.cancel()
            if transport is not None:
                transport.close()
            await state.hub.close()
            async with state.db() as s, s.begin():
                from sqlalchemy import update

                from wavry.gateway.models import Device

                await s.execute(
                    update(Device)
                    .where(Device.online_instance == state.instance_id)
                    .values(online_instance=None)
                )
            await state.engine.dispose()
            state.passwords.close()

    # /docs and /redoc serve Swagger UI and ReDoc from files in the fastapi-offline package:
    # no CDN, so the API documentation works offline and on closed networks.
    app = FastAPIOffline(
        title="Wavry gateway",
        version="1",
        description="Accounts, devices, relay registry (docs/spec/CONTROL_PLANE.md §2, §4).",
        lifespan=lifespan,
    )
    app.state.gw = state
    install_error_handlers(app)

    @app.middleware("http")
    async def rate_limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        ip = limit_key(state.addresses.of(request))
        now = time.monotonic()
        path = request.url.path
        if path.startswith("/v1/auth/") and not state.auth_rate.allow(ip, now):
            state.metrics.rate_limited.labels("auth").inc()
            return error_response(
                429, "rate_limited", "too many requests", 1.0 / settings.auth_rate_per_ip
            )
        if path not in ("/health", "/metrics") and not state.rate.allow(ip, now):
            state.metrics.rate_limited.labels("ip").inc()
            return error_response(
                429, "rate_limited", "too many requests", 1.0 / settings.rate_per_ip
            )
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        """People who open the gateway's address land on the admin page."""
        return RedirectResponse("/admin", status_code=307)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        ok = state.ready
        if ok:
            try:
                await api.count_users(state)
            except Exception:
                ok = False
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        with contextlib.suppress(Exception):
            await state.relays.listing()
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(accounts.router)
    app.include_router(devices.router)
    app.include_router(api.router)
    app.include_router(shares.router)
    app.include_router(relays.router)
    app.include_router(signaling.router)
    app.include_router(admin.router)
    app.include_router(webapp.router)
    return app
