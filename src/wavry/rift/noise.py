"""Noise_XX_25519_ChaChaPoly_BLAKE2s handshake primitive (docs/spec/RIFT.md §2), on `noiseprotocol`.

`noiseprotocol` runs the handshake; this wrapper adds what RIFT needs from it: the remote static
key and the `Split()` keys (the library keeps both internal), and deterministic ephemeral keys for
test vectors. The transport phase is RIFT's own (see crypto.py), not Noise's implicit nonces.
"""

from __future__ import annotations

import warnings
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection
from noise.exceptions import (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseValidationError,
    NoiseValueError,
)

_NOISE_ERRORS = (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseValidationError,
    NoiseValueError,
    InvalidTag,
)
# We set the responder's ephemeral key ourselves (handshake.py rebuilds the post-msg2 state after
# a forged msg3 and needs the same key); the library warns about that at every handshake.
warnings.filterwarnings("ignore", message="One of ephemeral keypairs is already set")

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2s"
RIFT_PROLOGUE = b"RIFT/1"


class NoiseHandshakeFailed(Exception):
    """A handshake message did not decrypt or arrived out of order."""


def generate_static_key() -> bytes:
    """A fresh X25519 private key (32 raw bytes) for use as a Noise static key."""
    return X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def x25519_public(private: bytes) -> bytes:
    return (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


class NoiseXX:
    """One side of one XX handshake."""

    def __init__(
        self,
        initiator: bool,
        static_private: bytes,
        prologue: bytes = RIFT_PROLOGUE,
        ephemeral_private: bytes | None = None,
    ) -> None:
        conn: Any = NoiseConnection.from_name(PROTOCOL_NAME)
        if initiator:
            conn.set_as_initiator()
        else:
            conn.set_as_responder()
        conn.set_prologue(prologue)
        conn.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
        if ephemeral_private is not None:  # test vectors only
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral_private)
                conn.start_handshake()
        else:
            conn.start_handshake()
        self._conn = conn
        # The library drops its handshake state when the handshake completes; keep a reference
        # so the remote static key stays readable.
        self._hs: Any = conn.noise_protocol.handshake_state
        self.initiator = initiator

    def write_message(self, payload: bytes = b"") -> bytes:
        try:
            return bytes(self._conn.write_message(payload))
        except _NOISE_ERRORS as exc:
            raise NoiseHandshakeFailed(str(exc)) from exc
        except ValueError as exc:  # e.g. DH with a low-order point the peer sent
            raise NoiseHandshakeFailed(f"key agreement failed: {exc}") from exc

    def read_message(self, message: bytes) -> bytes:
        try:
            return bytes(self._conn.read_message(message))
        except _NOISE_ERRORS as exc:
            raise NoiseHandshakeFailed(str(exc)) from exc
        except (ValueError, TypeError, IndexError) as exc:  # malformed input inside the library
            raise NoiseHandshakeFailed(f"malformed handshake message: {exc}") from exc

    @property
    def finished(self) -> bool:
        return bool(self._conn.handshake_finished)

    @property
    def remote_static(self) -> bytes | None:
        rs = getattr(self._hs, "rs", None)
        public = getattr(rs, "public_bytes", None)
        return bytes(public) if public is not None else None

    @property
    def handshake_hash(self) -> bytes:
        if not self.finished:
            raise NoiseHandshakeFailed("handshake not finished")
        return bytes(self._conn.get_handshake_hash())

    def split(self) -> tuple[bytes, bytes]:
        """Noise Split(): (initiator→responder key, responder→initiator key)."""
        if not self.finished:
            raise NoiseHandshakeFailed("handshake not finished")
        proto = self._conn.noise_protocol
        enc, dec = bytes(proto.cipher_state_encrypt.k), bytes(proto.cipher_state_decrypt.k)
        return (enc, dec) if self.initiator else (dec, enc)
