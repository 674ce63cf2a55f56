"""Relay leases: PASETO ``v4.public`` tokens signed with the gateway's Ed25519 lease key.

Claims (docs/spec/CONTROL_PLANE.md §4), all in the signed JSON payload, no footer:

=========  ==============================================================
``sub``    wavry_id of the peer the lease was granted to
``sid``    signaling session UUID (canonical lowercase string)
``role``   ``"client"`` or ``"host"``
``rid``    relay id the lease is valid on
``kid``    key id of the signing key (see :func:`key_id`)
``iat``    issued at, ISO 8601 with offset (``2025-01-01T00:00:00+00:00``)
``nbf``    not before, same format
``exp``    expiry, same format; default lifetime 5 minutes
``slimit`` soft bitrate limit, kbps (advisory; echoed to the peer)
``hlimit`` hard bitrate limit, kbps (enforced by the relay), > 0
=========  ==============================================================

Key id: the PASERK ``k4.pid`` of the public key (``k4.pid.`` + base64url(BLAKE2b-264(
``"k4.pid." + "k4.public." + base64url(raw public key)``))), as computed by pyseto.

Rejections map onto the relay's reason codes: 1 for any time-claim failure (expired, not yet
valid, issued in the future), 2 for anything that does not authenticate or does not match
(malformed token, unknown key id, bad signature, malformed claims, wrong session, wrong role),
3 for a lease minted for another relay.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyseto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wavry.atomicfile import atomic_write

__all__ = [
    "DEFAULT_LIFETIME",
    "MAX_TOKEN_LEN",
    "LeaseClaims",
    "LeaseError",
    "LeaseKeyError",
    "LeaseSigner",
    "LeaseVerifier",
    "RejectReason",
    "generate_private_key",
    "key_id",
    "load_or_create_private_key",
    "load_private_key",
    "load_public_key",
    "parse_public_key",
    "public_key_to_paserk",
    "save_private_key",
    "save_public_key",
    "sign_v4_public",
    "verify_v4_public",
]

DEFAULT_LIFETIME = timedelta(minutes=5)
MAX_TOKEN_LEN = 8192
ROLES = ("client", "host")
_HEADER = "v4.public."
_SIG_LEN = 64
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")


class RejectReason(enum.IntEnum):
    """LEASE_REJECT reason codes (docs/spec/CONTROL_PLANE.md §4)."""

    EXPIRED = 1
    INVALID_SIGNATURE = 2
    WRONG_RELAY = 3
    SESSION_FULL = 4
    BANNED = 5
    RATE_LIMITED = 6
    IDENTITY_MISMATCH = 7  # the role is bound to another identity (lease ``sub``)
    BAD_PROOF = 8  # address proof: stale or forged cookie, or not signed by ``sub``'s key


class LeaseError(Exception):
    """A lease was refused. ``reason_code`` is the wire reason; ``kind`` a finer label."""

    def __init__(self, reason_code: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.reason_code = int(reason_code)
        self.message = message
        self.kind = kind or RejectReason(reason_code).name.lower()


class LeaseKeyError(ValueError):
    """A lease key could not be loaded, parsed or saved."""


# --- low-level PASETO v4.public -----------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    if not _B64URL_RE.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def sign_v4_public(
    private_key: Ed25519PrivateKey,
    payload: bytes,
    footer: bytes = b"",
    implicit_assertion: bytes = b"",
) -> str:
    """Sign ``payload`` as a PASETO ``v4.public`` token (deterministic: Ed25519)."""
    key = pyseto.Key.from_asymmetric_key_params(4, d=_raw_private(private_key))
    token = pyseto.encode(key, payload, footer=footer, implicit_assertion=implicit_assertion)
    return token.decode("ascii")


def verify_v4_public(
    public_key: Ed25519PublicKey, token: str, implicit_assertion: bytes = b""
) -> tuple[bytes, bytes]:
    """Verify a ``v4.public`` token; return ``(payload, footer)``. Raises ``ValueError``."""
    if not token.startswith(_HEADER):
        raise ValueError("not a v4.public token")
    key = pyseto.Key.from_asymmetric_key_params(4, x=_raw_public(public_key))
    try:
        decoded = pyseto.decode(key, token, implicit_assertion=implicit_assertion)
    except Exception as exc:  # pyseto raises VerifyError, ValueError, DecodeError...
        raise ValueError(f"token does not verify: {exc}") from exc
    payload = decoded.payload
    footer = decoded.footer
    if not isinstance(payload, bytes) or not isinstance(footer, bytes):
        raise ValueError("unexpected PASETO decode result")
    return payload, footer


# --- keys ------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key id of a lease public key: its PASERK ``k4.pid`` string."""
    return str(pyseto.Key.from_asymmetric_key_params(4, x=_raw_public(public_key)).to_paserk_id())


def public_key_to_paserk(public_key: Ed25519PublicKey) -> str:
    """``k4.public.<base64url raw key>`` — the form the gateway publishes."""
    return "k4.public." + _b64url_encode(_raw_public(public_key))


def parse_public_key(text: str | bytes) -> Ed25519PublicKey:
    """Parse an Ed25519 public key given as PEM (SubjectPublicKeyInfo), PASERK
    ``k4.public.…``, 64 hex digits, or (url-safe or standard) base64 of the 32 raw bytes."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError as exc:
            raise LeaseKeyError("public key is not text") from exc
    text = text.strip()
    raw: bytes | None = None
    try:
        if text.startswith("-----BEGIN PUBLIC KEY-----"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise LeaseKeyError("PEM public key is not Ed25519")
            return key
        if text.startswith("k4.public."):
            raw = _b64url_decode(text[len("k4.public.") :])
        elif re.fullmatch(r"[0-9a-fA-F]{64}", text):
            raw = bytes.fromhex(text)
        else:
            std = text.replace("-", "+").replace("_", "/")
            raw = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
    except LeaseKeyError:
        raise
    except (ValueError, binascii.Error) as exc:
        raise LeaseKeyError(f"cannot parse public key: {exc}") from exc
    if raw is None or len(raw) != 32:
        raise LeaseKeyError("public key must be 32 bytes (Ed25519)")
    return Ed25519PublicKey.from_public_bytes(raw)


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _write_file(path: Path, data: bytes, mode: int, overwrite: bool) -> None:
    path = Path(path)
    if path.exists() and not overwrite:
        raise LeaseKeyError(f"{path} already exists")
    atomic_write(path, data, mode)


def save_private_key(key: Ed25519PrivateKey, path: str | Path, overwrite: bool = False) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM with file mode 0600 (atomic replace)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_file(Path(path), pem, 0o600, overwrite)


def save_public_key(key: Ed25519PublicKey, path: str | Path, overwrite: bool = False) -> None:
    """Write ``key`` as SubjectPublicKeyInfo PEM (mode 0644)."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_file(Path(path), pem, 0o644, overwrite)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Load a PKCS#8 PEM Ed25519 private key. Refuses files readable by group or others."""
    path = Path(path)
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise LeaseKeyError(f"cannot read {path}: {exc.strerror}") from exc
    if os.name == "posix" and st.st_mode & 0o077:
        raise LeaseKeyError(f"{path} is accessible by group/others; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise LeaseKeyError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LeaseKeyError(f"{path} is not an Ed25519 key")
    return key


def load_or_create_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Load the key at ``path``, or generate one and save it there (mode 0600)."""
    path = Path(path)
    if path.exists():
        return load_private_key(path)
    key = generate_private_key()
    save_private_key(key, path)
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Load a lease public key file (any form :func:`parse_public_key` accepts, or a PEM
    private key, whose public half is used)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LeaseKeyError(f"cannot read {path}: {exc.strerror}") from exc
    if data.lstrip().startswith(b"-----BEGIN PRIVATE KEY-----"):
        return load_private_key(path).public_key()
    try:
        return parse_public_key(data)
    except LeaseKeyError as exc:
        raise LeaseKeyError(f"{path}: {exc}") from exc


# --- claims ----------------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"{name} has no UTC offset")
    return dt.astimezone(UTC)


def _to_datetime(now: float | datetime) -> datetime:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("naive datetime; give a timezone-aware one")
        return now.astimezone(UTC)
    return datetime.fromtimestamp(now, UTC)


@dataclass(frozen=True)
class LeaseClaims:
    sub: str
    sid: str
    role: str
    rid: str
    kid: str
    iat: datetime
    nbf: datetime
    exp: datetime
    slimit: int
    hlimit: int

    @property
    def session_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.sid)

    @property
    def expires_unix_ms(self) -> int:
        return int(self.exp.timestamp() * 1000)

    def to_json(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "sid": self.sid,
            "role": self.role,
            "rid": self.rid,
            "kid": self.kid,
            "iat": _iso(self.iat),
            "nbf": _iso(self.nbf),
            "exp": _iso(self.exp),
            "slimit": self.slimit,
            "hlimit": self.hlimit,
        }

    @classmethod
    def from_json(cls, obj: Any) -> LeaseClaims:
        """Validate and convert a decoded claims object. Raises ``ValueError``."""
        if not isinstance(obj, dict):
            raise ValueError("claims are not a JSON object")
        strings = {}
        for name in ("sub", "sid", "role", "rid", "kid"):
            value = obj.get(name)
            if not isinstance(value, str) or not value or len(value) > 256:
                raise ValueError(f"claim {name!r} missing or not a short string")
            strings[name] = value
        if strings["role"] not in ROLES:
            raise ValueError("claim 'role' must be 'client' or 'host'")
        sid = uuid.UUID(strings["sid"])
        limits = {}
        for name in ("slimit", "hlimit"):
            value = obj.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
                raise ValueError(f"claim {name!r} must be an integer in [0, 2^32)")
            limits[name] = value
        if limits["hlimit"] == 0:
            raise ValueError("claim 'hlimit' must be > 0")
        iat = _parse_time(obj.get("iat"), "iat")
        nbf = _parse_time(obj.get("nbf"), "nbf")
        exp = _parse_time(obj.get("exp"), "exp")
        if exp <= nbf:
            raise ValueError("exp is not after nbf")
        return cls(
            sub=strings["sub"],
            sid=str(sid),
            role=strings["role"],
            rid=strings["rid"],
            kid=strings["kid"],
            iat=iat,
            nbf=nbf,
            exp=exp,
            slimit=limits["slimit"],
            hlimit=limits["hlimit"],
        )


class LeaseSigner:
    """Mints leases with the gateway's Ed25519 lease key."""

    def __init__(self, private_key: Ed25519PrivateKey, kid: str | None = None) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.kid = kid if kid is not None else key_id(self.public_key)

    def mint(
        self,
        sub: str,
        sid: str | uuid.UUID,
        role: str,
        rid: str,
        *,
        slimit_kbps: int,
        hlimit_kbps: int,
        lifetime: timedelta = DEFAULT_LIFETIME,
        now: float | datetime | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError("role must be 'client' or 'host'")
        if lifetime <= timedelta(0):
            raise ValueError("lifetime must be positive")
        issued = _to_datetime(now if now is not None else datetime.now(UTC))
        issued = issued.replace(microsecond=0)
        claims = LeaseClaims(
            sub=sub,
            sid=str(uuid.UUID(str(sid))),
            role=role,
            rid=rid,
            kid=self.kid,
            iat=issued,
            nbf=issued,
            exp=issued + lifetime,
            slimit=int(slimit_kbps),
            hlimit=int(hlimit_kbps),
        )
        LeaseClaims.from_json(claims.to_json())  # refuse to mint what we would not accept
        payload = json.dumps(claims.to_json(), separators=(",", ":")).encode("utf-8")
        return sign_v4_public(self._private_key, payload)


class LeaseVerifier:
    """Checks leases presented to relay ``relay_id``.

    ``leeway`` tolerates clock skew between gateway and relay for ``nbf``/``iat`` only;
    ``exp`` is enforced exactly.
    """

    def __init__(
        self,
        public_keys: Mapping[str, Ed25519PublicKey],
        relay_id: str,
        leeway: timedelta = timedelta(seconds=30),
    ) -> None:
        self._keys: dict[str, Any] = {}
        for kid, pub in public_keys.items():
            self.add_key(kid, pub)
        self.relay_id = relay_id
        self.leeway = leeway

    def add_key(self, kid: str, public_key: Ed25519PublicKey) -> None:
        self._keys[kid] = pyseto.Key.from_asymmetric_key_params(4, x=_raw_public(public_key))

    def remove_key(self, kid: str) -> None:
        self._keys.pop(kid, None)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def verify(
        self,
        token: str | bytes,
        now: float | datetime,
        expected_sid: str | uuid.UUID,
        expected_role: str,
    ) -> LeaseClaims:
        bad = RejectReason.INVALID_SIGNATURE
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise LeaseError(bad, "token is not ASCII", "malformed") from None
        if len(token) > MAX_TOKEN_LEN or not token.startswith(_HEADER):
            raise LeaseError(bad, "not a v4.public token", "malformed")
        parts = token.split(".")
        if len(parts) not in (3, 4):
            raise LeaseError(bad, "malformed token", "malformed")
        # The payload of a v4.public token is readable before verification: take the key id
        # from it to pick the key, then verify with that key only.
        try:
            body = _b64url_decode(parts[2])
            if len(body) <= _SIG_LEN:
                raise ValueError("too short")
            unverified = json.loads(body[:-_SIG_LEN])
            kid = unverified.get("kid") if isinstance(unverified, dict) else None
        except (ValueError, UnicodeDecodeError):
            raise LeaseError(bad, "malformed token", "malformed") from None
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise LeaseError(bad, f"unknown key id {kid!r}", "unknown_kid")
        try:
            payload = pyseto.decode(key, token).payload
        except Exception:  # VerifyError, or ValueError/DecodeError on a mangled token
            raise LeaseError(bad, "lease signature does not verify", "bad_signature") from None
        try:
            if not isinstance(payload, bytes):
                raise ValueError("unexpected payload type")
            claims = LeaseClaims.from_json(json.loads(payload))
        except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
            raise LeaseError(bad, f"malformed lease claims: {exc}", "bad_claims") from None
        if claims.rid != self.relay_id:
            raise LeaseError(
                RejectReason.WRONG_RELAY, f"lease is for relay {claims.rid!r}", "wrong_relay"
            )
        if uuid.UUID(claims.sid) != uuid.UUID(str(expected_sid)):
            raise LeaseError(bad, "lease is for another session", "wrong_session")
        if claims.role != expected_role:
            raise LeaseError(bad, f"lease is for role {claims.role!r}", "wrong_role")
        at = _to_datetime(now)
        if at >= claims.exp:
            raise LeaseError(RejectReason.EXPIRED, "lease expired", "expired")
        if at < claims.nbf - self.leeway or at < claims.iat - self.leeway:
            raise LeaseError(RejectReason.EXPIRED, "lease not valid yet", "not_yet_valid")
        return claims
