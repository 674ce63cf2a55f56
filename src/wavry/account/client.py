"""A client of the gateway's account API (docs/spec/CONTROL_PLANE.md §2).

Used by `wavry register|login|logout|whoami|hosts`, by a host that signs in with its device key,
and by the desktop app. Every failure is a :class:`GatewayError` carrying the gateway's machine
code and a message a user can act on; nothing here prints.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import httpx

from wavry.controlplane.devicelogin import device_login_message
from wavry.rift.identity import Identity

__all__ = [
    "DEVICE_LOGIN_CONTEXT",
    "DEVICE_PROOF_CONTEXT",
    "AuthResult",
    "GatewayClient",
    "GatewayError",
    "HostEntry",
    "device_login_signature",
    "device_proof",
]

DEVICE_PROOF_CONTEXT = b"wavry-device:"
DEVICE_LOGIN_CONTEXT = b"wavry-device-login:"
TIMEOUT_S = 10.0


class GatewayError(Exception):
    """The gateway refused (``code`` is its machine code) or could not be reached."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class AuthResult:
    user: dict[str, Any]
    token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class HostEntry:
    wavry_id: str
    name: str
    online: bool
    shared: bool
    last_seen: float | None
    owner: str | None  # the sharing account's username, for hosts shared with this account

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HostEntry:
        return cls(
            wavry_id=str(d.get("wavry_id", "")),
            name=str(d.get("name", "")),
            online=bool(d.get("online")),
            shared=bool(d.get("shared")),
            last_seen=float(d["last_seen"]) if d.get("last_seen") else None,
            owner=str(d["owner"]) if d.get("owner") else None,
        )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def device_proof(identity: Identity, user_id: str) -> str:
    """Proof that this device's key holder registers it to ``user_id`` (CONTROL_PLANE.md §2)."""
    return _b64url(identity.sign(DEVICE_PROOF_CONTEXT + user_id.encode("utf-8")))


def device_login_signature(identity: Identity, timestamp: int, base_url: str) -> str:
    """The signature of `POST /v1/auth/device` (CONTROL_PLANE.md §2)."""
    # the gateway's canonical form of the URL (lower case, default port dropped): spec §2
    return _b64url(identity.sign(device_login_message(timestamp, normalize_url(base_url))))


def normalize_url(url: str) -> str:
    """A gateway base URL as the gateway states it: scheme://host[:port], no trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    return url.rstrip("/")


class GatewayClient:
    """One gateway, async (httpx). Use as ``async with GatewayClient(url) as gw``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = normalize_url(base_url)
        self.token = token
        # certificates are loaded only for https: building a verifying context costs ~0.1 s,
        # which an http:// gateway (a LAN or a lab) would pay on every `wavry connect NAME`
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=TIMEOUT_S,
            transport=transport,
            follow_redirects=False,
            verify=self.base_url.startswith("https://"),
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, auth: bool = False
    ) -> Any:
        headers = {}
        if auth:
            if not self.token:
                raise GatewayError("not_signed_in", "not signed in: run `wavry login URL` first")
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            r = await self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayError(
                "unreachable", f"cannot reach the gateway at {self.base_url}: {exc}"
            ) from None
        if r.status_code == 204:
            return None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400:
            code = "http_error"
            message = f"the gateway answered HTTP {r.status_code}"
            if isinstance(data, dict):
                code = str(data.get("error") or code)
                message = str(data.get("message") or message)
            if r.status_code == 429 and r.headers.get("Retry-After"):
                message += f" (retry in {r.headers['Retry-After']} s)"
            raise GatewayError(code, message, r.status_code)
        if data is None:
            raise GatewayError("bad_answer", f"the gateway at {self.base_url} answered no JSON")
        return data

    @staticmethod
    def _auth(data: Any) -> AuthResult:
        try:
            return AuthResult(dict(data["user"]), str(data["token"]), float(data["expires_at"]))
        except (KeyError, TypeError, ValueError):
            raise GatewayError("bad_answer", "the gateway's sign-in answer is malformed") from None

    async def register(
        self, email: str, username: str, password: str, display_name: str
    ) -> AuthResult:
        body = {
            "email": email,
            "username": username,
            "password": password,
            "display_name": display_name,
        }
        res = self._auth(await self._call("POST", "/v1/auth/register", body))
        self.token = res.token
        return res

    async def login(self, login: str, password: str, totp_code: str | None = None) -> AuthResult:
        body: dict[str, Any] = {"login": login, "password": password}
        if totp_code:
            body["totp_code"] = totp_code
        res = self._auth(await self._call("POST", "/v1/auth/login", body))
        self.token = res.token
        return res

    async def device_login(self, identity: Identity, now: float | None = None) -> AuthResult:
        """Sign in with the device key (an unattended host never stores a password)."""
        ts = int(time.time() if now is None else now)
        body = {
            "wavry_id": identity.wavry_id,
            "timestamp": ts,
            "signature": device_login_signature(identity, ts, self.base_url),
        }
        res = self._auth(await self._call("POST", "/v1/auth/device", body))
        self.token = res.token
        return res

    async def logout(self) -> None:
        await self._call("POST", "/v1/auth/logout", auth=True)
        self.token = None

    async def me(self) -> dict[str, Any]:
        data = await self._call("GET", "/v1/me", auth=True)
        if not isinstance(data, dict):
            raise GatewayError("bad_answer", "the gateway's /v1/me answer is malformed")
        return data

    async def add_device(self, identity: Identity, user_id: str, name: str, kind: str) -> None:
        body = {
            "wavry_id": identity.wavry_id,
            "name": name[:64] or "device",
            "kind": kind,
            "proof": device_proof(identity, user_id),
        }
        await self._call("POST", "/v1/devices", body, auth=True)

    async def remove_device(self, wavry_id: str) -> None:
        """Remove one of this account's devices (it is signed out of signaling at once)."""
        from urllib.parse import quote

        await self._call("DELETE", f"/v1/devices/{quote(wavry_id, safe='')}", auth=True)

    async def totp_setup(self, password: str) -> tuple[str, str]:
        """A new TOTP secret for this account: (secret, otpauth URI). It takes effect only once
        :meth:`totp_enable` confirms a code made from it."""
        data = await self._call("POST", "/v1/auth/totp/setup", {"password": password}, auth=True)
        try:
            return str(data["secret"]), str(data["otpauth_uri"])
        except (KeyError, TypeError):
            raise GatewayError("bad_answer", "the gateway's TOTP answer is malformed") from None

    async def totp_enable(self, secret: str, code: str) -> None:
        body = {"secret": secret, "code": code.replace(" ", "")}
        await self._call("POST", "/v1/auth/totp/enable", body, auth=True)

    async def hosts(self) -> list[HostEntry]:
        data = await self._call("GET", "/v1/hosts", auth=True)
        try:
            return [HostEntry.from_json(h) for h in data["hosts"]]
        except (KeyError, TypeError):
            raise GatewayError("bad_answer", "the gateway's host list is malformed") from None
