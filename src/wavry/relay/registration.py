"""Relay → gateway registration and heartbeats (docs/spec/CONTROL_PLANE.md §4).

``POST /v1/relays/register`` (``Authorization: Bearer <enrolment token>``) with
``{relay_id, public_addr, region, max_sessions, max_bitrate_kbps}`` answers
``{heartbeat_interval_ms, lease_public_key, key_id}``; then every interval
``POST /v1/relays/heartbeat`` with ``{relay_id, load_pct, sessions}`` (same bearer token).

Failures back off exponentially (with jitter) up to ``backoff_max``; a heartbeat answered
401/403/404 means the gateway no longer knows this relay, so it registers again. A
registration answered 401/403 is fatal (bad enrolment token): :meth:`RegistrationLoop.run`
raises :class:`GatewayError`.

HTTP is plain ``urllib`` run in a worker thread (no extra dependency); redirects are refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wavry.controlplane.lease import LeaseKeyError, parse_public_key

__all__ = ["GatewayClient", "GatewayError", "Registration", "RegistrationLoop", "RelayInfo"]

log = logging.getLogger("wavry.relay.registration")

_MAX_RESPONSE = 1024 * 1024
USER_AGENT = "wavry-relay/0.1"


class GatewayError(Exception):
    """The gateway could not be reached or answered with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})" if status else message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RelayInfo:
    relay_id: str
    public_addr: str
    region: str
    max_sessions: int
    max_bitrate_kbps: int

    def to_json(self) -> dict[str, Any]:
        return {
            "relay_id": self.relay_id,
            "public_addr": self.public_addr,
            "region": self.region,
            "max_sessions": self.max_sessions,
            "max_bitrate_kbps": self.max_bitrate_kbps,
        }


@dataclass(frozen=True)
class Registration:
    heartbeat_interval_ms: int
    lease_public_key: Ed25519PublicKey
    key_id: str

    @classmethod
    def from_json(cls, obj: Any) -> Registration:
        if not isinstance(obj, dict):
            raise GatewayError(0, "bad_response", "registration answer is not a JSON object")
        interval = obj.get("heartbeat_interval_ms")
        if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
            raise GatewayError(0, "bad_response", "heartbeat_interval_ms missing or invalid")
        kid = obj.get("key_id")
        if not isinstance(kid, str) or not kid:
            raise GatewayError(0, "bad_response", "key_id missing")
        key_text = obj.get("lease_public_key")
        if not isinstance(key_text, str):
            raise GatewayError(0, "bad_response", "lease_public_key missing")
        try:
            key = parse_public_key(key_text)
        except LeaseKeyError as exc:
            raise GatewayError(0, "bad_response", f"lease_public_key: {exc}") from None
        return cls(interval, key, kid)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class GatewayClient:
    """Minimal JSON-over-HTTP client for the relay endpoints of the gateway."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"gateway URL must be http(s)://host[:port]: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def _post_sync(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode("utf-8"),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read(_MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            code, message = "http_error", exc.reason if isinstance(exc.reason, str) else ""
            try:
                err = json.loads(exc.read(65536))
                if isinstance(err, dict):
                    code = str(err.get("error", code))
                    message = str(err.get("message", message))
            except (ValueError, OSError):
                pass
            raise GatewayError(exc.code, code, message or f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GatewayError(0, "unreachable", f"gateway unreachable: {reason}") from None
        if len(raw) > _MAX_RESPONSE:
            raise GatewayError(0, "bad_response", "gateway answer too large")
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise GatewayError(0, "bad_response", "gateway answer is not JSON") from None

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self._post_sync, path, body)

    async def register(self, info: RelayInfo) -> Registration:
        return Registration.from_json(await self.post("/v1/relays/register", info.to_json()))

    async def heartbeat(self, relay_id: str, load_pct: float, sessions: int) -> Any:
        body = {"relay_id": relay_id, "load_pct": round(load_pct, 2), "sessions": sessions}
        return await self.post("/v1/relays/heartbeat", body)


class RegistrationLoop:
    """Registers, then heartbeats forever; re-registers when the gateway forgets the relay.

    ``on_registered`` is called with every successful :class:`Registration` (install the
    lease key there). ``load`` returns ``(load_pct, sessions)`` for heartbeats.
    """

    def __init__(
        self,
        client: GatewayClient,
        info: RelayInfo,
        *,
        on_registered: Callable[[Registration], None],
        load: Callable[[], tuple[float, int]],
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        min_interval: float = 1.0,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.info = info
        self.on_registered = on_registered
        self.load = load
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.min_interval = min_interval
        self._rng = rng
        self._sleep = sleep
        self.registered = False
        self.failures = 0
        self.last_error: str | None = None
        self.heartbeats_sent = 0

    def backoff(self, failures: int) -> float:
        """Delay after ``failures`` consecutive failures: exponential, capped, with jitter
        in [50 %, 100 %] of the step."""
        step = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, failures - 1))
        return float(step * (0.5 + 0.5 * self._rng()))

    def _failed(self, exc: GatewayError) -> float:
        self.failures += 1
        self.last_error = str(exc)
        delay = self.backoff(self.failures)
        log.warning("gateway: %s; retrying in %.1f s", exc, delay)
        return delay

    async def _register(self) -> Registration:
        while True:
            try:
                reg = await self.client.register(self.info)
            except GatewayError as exc:
                if exc.status in (401, 403):
                    self.last_error = str(exc)
                    raise
                await self._sleep(self._failed(exc))
                continue
            self.failures = 0
            self.last_error = None
            self.registered = True
            self.on_registered(reg)
            log.info("registered with gateway %s as %s", self.client.base_url, self.info.relay_id)
            return reg

    async def run(self) -> None:
        while True:
            reg = await self._register()
            interval = max(self.min_interval, reg.heartbeat_interval_ms / 1000)
            delay = interval
            while True:
                await self._sleep(delay)
                load_pct, sessions = self.load()
                try:
                    await self.client.heartbeat(self.info.relay_id, load_pct, sessions)
                except GatewayError as exc:
                    if exc.status in (401, 403, 404):
                        log.warning("gateway forgot this relay (%s); registering again", exc)
                        self.registered = False
                        break
                    delay = self._failed(exc)
                    continue
                self.heartbeats_sent += 1
                self.failures = 0
                self.last_error = None
                delay = interval
