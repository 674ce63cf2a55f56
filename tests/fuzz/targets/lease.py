"""Relay lease tokens (PASETO v4.public, docs/spec/CONTROL_PLANE.md §5): the verifier a relay
runs on every LEASE_PRESENT, and the claims parser, on any token text."""

from __future__ import annotations

import contextlib
import json
import uuid

from wavry.controlplane.lease import (
    LeaseClaims,
    LeaseError,
    LeaseSigner,
    LeaseVerifier,
    generate_private_key,
    key_id,
)

_KEY = generate_private_key()
_SIGNER = LeaseSigner(_KEY)
_VERIFIER = LeaseVerifier({key_id(_KEY.public_key()): _KEY.public_key()}, "relay-1")
SID = uuid.UUID(int=9)
NOW = 1_800_000_000.0


def seeds() -> list[bytes]:
    token = _SIGNER.mint("sub", SID, "client", "relay-1", slimit_kbps=1, hlimit_kbps=2, now=NOW)
    return [token.encode(), token.encode()[:-10], b"v4.public.", b'{"sub":"x"}']


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(LeaseError):
        _VERIFIER.verify(data, NOW + 10, SID, "client")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return
    with contextlib.suppress(ValueError, TypeError, KeyError):
        LeaseClaims.from_json(obj)
