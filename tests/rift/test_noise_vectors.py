"""The handshake primitive against the cacophony Noise_XX_25519_ChaChaPoly_BLAKE2s vector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wavry.rift.crypto import nonce_for
from wavry.rift.noise import NoiseHandshakeFailed, NoiseXX, generate_static_key, x25519_public

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "noise"


def _vector() -> dict[str, object]:
    path = VECTORS / "noise_xx_25519_chachapoly_blake2s.json"
    data = json.loads(path.read_text())
    for v in data["vectors"]:
        if v["protocol_name"] == "Noise_XX_25519_ChaChaPoly_BLAKE2s":
            return dict(v)
    raise AssertionError("vector missing")


def test_vector_messages_and_handshake_hash() -> None:
    v = _vector()
    h = bytes.fromhex
    init = NoiseXX(True, h(v["init_static"]), h(v["init_prologue"]), h(v["init_ephemeral"]))
    resp = NoiseXX(False, h(v["resp_static"]), h(v["resp_prologue"]), h(v["resp_ephemeral"]))
    msgs = v["messages"]
    assert isinstance(msgs, list)
    sides = [(init, resp), (resp, init), (init, resp)]
    for (writer, reader), m in zip(sides, msgs[:3], strict=True):
        ct = writer.write_message(h(m["payload"]))
        assert ct == h(m["ciphertext"])
        assert reader.read_message(ct) == h(m["payload"])
    assert init.handshake_hash == h(str(v["handshake_hash"]))
    assert resp.handshake_hash == init.handshake_hash
    assert init.remote_static == x25519_public(h(v["resp_static"]))
    assert resp.remote_static == x25519_public(h(v["init_static"]))
    # Split(): the vector's transport messages decrypt with our keys at Noise's nonces.
    k_i2r, k_r2i = init.split()
    assert resp.split() == (k_i2r, k_r2i)
    plan = [(3, k_r2i, 0), (4, k_i2r, 0), (5, k_r2i, 1)]
    for idx, key, nonce in plan:
        pt = ChaCha20Poly1305(key).decrypt(nonce_for(nonce), h(msgs[idx]["ciphertext"]), b"")
        assert pt == h(msgs[idx]["payload"])


def test_tampered_message_fails() -> None:
    a = NoiseXX(True, generate_static_key())
    b = NoiseXX(False, generate_static_key())
    b.read_message(a.write_message())
    msg2 = bytearray(b.write_message(b"hello"))
    msg2[40] ^= 1
    with pytest.raises(NoiseHandshakeFailed):
        a.read_message(bytes(msg2))


def test_prologue_mismatch_fails() -> None:
    a = NoiseXX(True, generate_static_key(), prologue=b"RIFT/1")
    b = NoiseXX(False, generate_static_key(), prologue=b"RIFT/2")
    b.read_message(a.write_message())
    with pytest.raises(NoiseHandshakeFailed):
        a.read_message(b.write_message(b""))
