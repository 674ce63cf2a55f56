"""Long-term device identity (Ed25519) and the Wavry ID (docs/spec/RIFT.md §2)."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

STATIC_KEY_CONTEXT = b"RIFT/1 static key"
WAVRY_ID_LEN = 43


class InvalidWavryId(ValueError):
    """A string that is not a well-formed Wavry ID."""


def wavry_id_from_public_key(public_key: bytes) -> str:
    """base64url without padding of the 32-byte Ed25519 public key (43 characters)."""
    if len(public_key) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return base64.urlsafe_b64encode(public_key).rstrip(b"=").decode("ascii")


def public_key_from_wavry_id(wavry_id: str) -> bytes:
    if len(wavry_id) != WAVRY_ID_LEN:
        raise InvalidWavryId(f"a Wavry ID has {WAVRY_ID_LEN} characters, got {len(wavry_id)}")
    try:
        raw = base64.urlsafe_b64decode(wavry_id + "=")
    except (binascii.Error, ValueError) as exc:
        raise InvalidWavryId(f"not base64url: {wavry_id!r}") from exc
    if len(raw) != 32 or wavry_id_from_public_key(raw) != wavry_id:
        raise InvalidWavryId(f"not a canonical Wavry ID: {wavry_id!r}")
    return raw


class Identity:
    """An Ed25519 signing key; the device's long-term identity."""

    __slots__ = ("_private", "public_key", "wavry_id")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.wavry_id: str = wavry_id_from_public_key(self.public_key)

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Identity:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def sign_static_key(self, noise_static_public: bytes) -> bytes:
        """identity_sig of HandshakePayload: signature over "RIFT/1 static key" || static key."""
        return self.sign(STATIC_KEY_CONTEXT + noise_static_public)


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_static_key_signature(identity_key: bytes, signature: bytes, static_key: bytes) -> bool:
    return verify_signature(identity_key, signature, STATIC_KEY_CONTEXT + static_key)
