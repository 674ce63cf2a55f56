"""Device proofs of docs/spec/CONTROL_PLANE.md §2, shared by the gateway (which checks them) and
the peers (which make them).

- Registration proof (``POST /v1/devices``): Ed25519 signature by the device key over
  ``wavry-device:`` + user id.
- Device-key login (``POST /v1/auth/device``): signature over ``wavry-device-login:`` +
  timestamp (decimal ASCII Unix seconds) + ``:`` + the gateway's public base URL in canonical
  form (:func:`canonical_base_url`). The URL binds the signature to one gateway: a gateway that
  collects signatures cannot replay them at another one.

Signatures travel as base64url without padding (86 characters).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Protocol
from urllib.parse import urlsplit

__all__ = [
    "DEVICE_LOGIN_CONTEXT",
    "DEVICE_LOGIN_WINDOW",
    "DEVICE_PROOF_CONTEXT",
    "canonical_base_url",
    "decode_signature",
    "device_login_body",
    "device_login_message",
    "encode_signature",
]

DEVICE_PROOF_CONTEXT = b"wavry-device:"
DEVICE_LOGIN_CONTEXT = b"wavry-device-login:"
DEVICE_LOGIN_WINDOW = 120  # seconds either side of the gateway's clock

_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Signer(Protocol):
    @property
    def wavry_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


def canonical_base_url(url: str) -> str:
    """``HTTPS://GW.Example.com:443/wavry/`` → ``https://gw.example.com/wavry``.

    Scheme and host in lower case, the scheme's default port dropped, no trailing slash; user
    info, query and fragment are refused (``ValueError``)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {url!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"expected http(s)://HOST[:PORT][/PATH], got {url!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError(f"a base URL has no user, query or fragment: {url!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def device_login_message(timestamp: int, base_url: str) -> bytes:
    """The bytes a device signs to log in at the gateway reached at ``base_url``."""
    url = canonical_base_url(base_url)
    return DEVICE_LOGIN_CONTEXT + f"{int(timestamp)}:{url}".encode()


def encode_signature(signature: bytes) -> str:
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")


def decode_signature(text: str) -> bytes:
    """base64url without padding → bytes (b"" when it is not valid base64url)."""
    if not text or len(text) % 4 == 1 or any(c in text for c in "+/="):
        return b""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def device_login_body(
    identity: _Signer, base_url: str, timestamp: int | None = None
) -> dict[str, object]:
    """The JSON body of ``POST /v1/auth/device`` for ``identity`` at ``base_url``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    sig = identity.sign(device_login_message(ts, base_url))
    return {"wavry_id": identity.wavry_id, "timestamp": ts, "signature": encode_signature(sig)}
