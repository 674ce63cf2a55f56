"""PASETO v4.public leases: official test vectors, claims, rejections, key files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wavry.controlplane.lease import (
    LeaseClaims,
    LeaseError,
    LeaseKeyError,
    LeaseSigner,
    LeaseVerifier,
    RejectReason,
    generate_private_key,
    key_id,
    load_or_create_private_key,
    load_private_key,
    load_public_key,
    parse_public_key,
    public_key_to_paserk,
    save_private_key,
    save_public_key,
    sign_v4_public,
    verify_v4_public,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "paseto" / "v4.json").read_text()
)["tests"]
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
SID = uuid.UUID("6f1e3c2a-9b8d-4c7e-a5f4-0123456789ab")


def _vector(name: str) -> dict[str, object]:
    return next(v for v in VECTORS if v["name"] == name)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- official vectors ------------------------------------------------------------------------


PUBLIC_OK = [v for v in VECTORS if v["token"].startswith("v4.public.") and not v["expect-fail"]]
EXPECT_FAIL = [v for v in VECTORS if v["expect-fail"]]


def test_vector_file_has_what_we_test() -> None:
    assert [v["name"] for v in PUBLIC_OK] == ["4-S-1", "4-S-2", "4-S-3"]
    assert len(EXPECT_FAIL) == 5


@pytest.mark.parametrize("vec", PUBLIC_OK, ids=lambda v: v["name"])
def test_v4_public_vector_verifies(vec: dict[str, str]) -> None:
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(vec["public-key"]))
    payload, footer = verify_v4_public(pub, vec["token"], vec["implicit-assertion"].encode())
    assert payload == vec["payload"].encode()
    assert footer == vec["footer"].encode()
    # Wrong implicit assertion, or a tampered token, must not verify.
    with pytest.raises(ValueError):
        verify_v4_public(pub, vec["token"], b"other assertion")
    body = vec["token"].split(".")[2]
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    with pytest.raises(ValueError):
        verify_v4_public(
            pub, vec["token"].replace(body, flipped), vec["implicit-assertion"].encode()
        )


@pytest.mark.parametrize("vec", PUBLIC_OK, ids=lambda v: v["name"])
def test_v4_public_vector_reproduced_byte_for_byte(vec: dict[str, str]) -> None:
    seed = bytes.fromhex(vec["secret-key-seed"])
    priv = Ed25519PrivateKey.from_private_bytes(seed)
    assert bytes.fromhex(vec["secret-key"]) == seed + bytes.fromhex(vec["public-key"])
    token = sign_v4_public(
        priv, vec["payload"].encode(), vec["footer"].encode(), vec["implicit-assertion"].encode()
    )
    assert token == vec["token"]


@pytest.mark.parametrize("vec", PUBLIC_OK[:1], ids=lambda v: v["name"])
def test_vector_pem_keys_load(vec: dict[str, str], tmp_path: Path) -> None:
    priv_path = tmp_path / "lease.key"
    priv_path.write_text(vec["secret-key-pem"])
    priv_path.chmod(0o600)
    pub_path = tmp_path / "lease.pub"
    pub_path.write_text(vec["public-key-pem"])
    priv = load_private_key(priv_path)
    pub = load_public_key(pub_path)
    assert pub.public_bytes_raw() == bytes.fromhex(vec["public-key"])
    assert priv.public_key().public_bytes_raw() == pub.public_bytes_raw()
    token = sign_v4_public(priv, vec["payload"].encode())
    assert token == vec["token"]


@pytest.mark.parametrize("vec", EXPECT_FAIL, ids=lambda v: v["name"])
def test_expect_fail_vectors_fail(vec: dict[str, str]) -> None:
    key_hex = vec.get("public-key") or vec["key"]
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))
    with pytest.raises(ValueError):
        verify_v4_public(pub, vec["token"], vec["implicit-assertion"].encode())
    verifier = LeaseVerifier({"k": pub}, "relay-1")
    with pytest.raises(LeaseError) as info:
        verifier.verify(vec["token"], NOW, SID, "client")
    assert info.value.reason_code == RejectReason.INVALID_SIGNATURE


def test_local_tokens_are_never_accepted_as_public() -> None:
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(PUBLIC_OK[0]["public-key"]))
    local = [v for v in VECTORS if v["token"].startswith("v4.local.")]
    assert len(local) >= 9
    for vec in local:
        with pytest.raises(ValueError):
            verify_v4_public(pub, vec["token"])


# --- key ids and key formats -----------------------------------------------------------------


def test_key_id_is_paserk_pid() -> None:
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(PUBLIC_OK[0]["public-key"]))
    paserk = "k4.public." + _b64url(pub.public_bytes_raw())
    assert public_key_to_paserk(pub) == paserk
    digest = hashlib.blake2b(("k4.pid." + paserk).encode(), digest_size=33).digest()
    assert key_id(pub) == "k4.pid." + _b64url(digest)
    signer = LeaseSigner(Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))
    assert signer.kid == key_id(signer.public_key)
    assert signer.kid != key_id(pub)


def test_parse_public_key_formats() -> None:
    pub = generate_private_key().public_key()
    raw = pub.public_bytes_raw()
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for form in (
        pem,
        public_key_to_paserk(pub),
        raw.hex(),
        base64.b64encode(raw).decode(),
        _b64url(raw),
    ):
        assert parse_public_key(form).public_bytes_raw() == raw
    for bad in ("", "k4.public.AAAA", "zz" * 32, "-----BEGIN PUBLIC KEY-----\nxx\n", "x" * 100):
        with pytest.raises(LeaseKeyError):
            parse_public_key(bad)


def test_key_files(tmp_path: Path) -> None:
    key = generate_private_key()
    path = tmp_path / "lease.key"
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_key(path).private_bytes_raw() == key.private_bytes_raw()
    with pytest.raises(LeaseKeyError, match="exists"):
        save_private_key(generate_private_key(), path)
    assert load_or_create_private_key(path).private_bytes_raw() == key.private_bytes_raw()
    # The public half, from the private PEM or from a saved public PEM.
    assert load_public_key(path).public_bytes_raw() == key.public_key().public_bytes_raw()
    save_public_key(key.public_key(), tmp_path / "lease.pub")
    loaded = load_public_key(tmp_path / "lease.pub")
    assert loaded.public_bytes_raw() == key.public_key().public_bytes_raw()
    # A fresh key is created with mode 0600; a world-readable key is refused.
    fresh = tmp_path / "sub.key"
    created = load_or_create_private_key(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert load_private_key(fresh).private_bytes_raw() == created.private_bytes_raw()
    os.chmod(fresh, 0o644)
    with pytest.raises(LeaseKeyError, match="chmod 600"):
        load_private_key(fresh)
    with pytest.raises(LeaseKeyError, match="cannot read"):
        load_public_key(tmp_path / "missing.pub")
    (tmp_path / "junk.key").write_text("not a key")
    os.chmod(tmp_path / "junk.key", 0o600)
    with pytest.raises(LeaseKeyError):
        load_private_key(tmp_path / "junk.key")


# --- minting and verification ----------------------------------------------------------------


@pytest.fixture
def signer() -> LeaseSigner:
    return LeaseSigner(generate_private_key())


@pytest.fixture
def verifier(signer: LeaseSigner) -> LeaseVerifier:
    return LeaseVerifier({signer.kid: signer.public_key}, "relay-1")


def _mint(signer: LeaseSigner, **kw: object) -> str:
    args: dict[str, object] = {
        "sub": "wavry-client-1",
        "sid": SID,
        "role": "client",
        "rid": "relay-1",
        "slimit_kbps": 20000,
        "hlimit_kbps": 30000,
        "now": NOW,
    }
    args.update(kw)
    return signer.mint(**args)  # type: ignore[arg-type]


def _payload(token: str) -> dict[str, object]:
    body = token.split(".")[2]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return json.loads(raw[:-64])  # type: ignore[no-any-return]


def test_mint_claims_format(signer: LeaseSigner, verifier: LeaseVerifier) -> None:
    token = _mint(signer)
    assert token.startswith("v4.public.") and token.count(".") == 2  # no footer
    claims = _payload(token)
    assert claims == {
        "sub": "wavry-client-1",
        "sid": str(SID),
        "role": "client",
        "rid": "relay-1",
        "kid": signer.kid,
        "iat": "2030-01-02T03:04:05+00:00",
        "nbf": "2030-01-02T03:04:05+00:00",
        "exp": "2030-01-02T03:09:05+00:00",  # default lifetime: 5 minutes
        "slimit": 20000,
        "hlimit": 30000,
    }
    got = verifier.verify(token, NOW + timedelta(seconds=10), str(SID), "client")
    assert got == LeaseClaims.from_json(claims)
    assert got.expires_unix_ms == int((NOW + timedelta(minutes=5)).timestamp() * 1000)
    # `now` may be a unix timestamp too.
    assert verifier.verify(token.encode(), NOW.timestamp(), SID, "client") == got


def _reason(verifier: LeaseVerifier, token: str, **kw: object) -> tuple[int, str]:
    args: dict[str, object] = {"now": NOW, "expected_sid": SID, "expected_role": "client"}
    args.update(kw)
    with pytest.raises(LeaseError) as info:
        verifier.verify(token, **args)  # type: ignore[arg-type]
    return info.value.reason_code, info.value.kind


def test_rejections(signer: LeaseSigner, verifier: LeaseVerifier) -> None:
    good = _mint(signer)
    # Forgery: another key, even claiming the real key id.
    forger = LeaseSigner(generate_private_key(), kid=signer.kid)
    assert _reason(verifier, _mint(forger)) == (2, "bad_signature")
    assert _reason(verifier, _mint(LeaseSigner(generate_private_key()))) == (2, "unknown_kid")
    # Time claims.
    assert _reason(verifier, good, now=NOW + timedelta(minutes=5)) == (1, "expired")
    assert _reason(verifier, good, now=NOW + timedelta(hours=1)) == (1, "expired")
    assert _reason(verifier, good, now=NOW - timedelta(seconds=31)) == (1, "not_yet_valid")
    verifier.verify(good, NOW - timedelta(seconds=29), SID, "client")  # within leeway
    # Binding claims.
    assert _reason(verifier, _mint(signer, rid="relay-2")) == (3, "wrong_relay")
    assert _reason(verifier, good, expected_sid=uuid.uuid4()) == (2, "wrong_session")
    assert _reason(verifier, good, expected_role="host") == (2, "wrong_role")
    # Tampering and junk.
    body = good.split(".")[2]
    tampered = "v4.public." + body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    assert _reason(verifier, tampered)[0] == 2
    bad_sig = good[:-10] + ("A" if good[-10] != "A" else "B") + good[-9:]
    assert _reason(verifier, bad_sig) == (2, "bad_signature")
    assert _reason(verifier, good[:-4])[0] == 2
    assert _reason(verifier, good[:-5])[0] == 2
    assert _reason(verifier, good + ".Zm9v") == (2, "bad_signature")  # footer not signed
    for junk in ("", "v4.public.", "v4.public.!!!", "v2.public." + body, "v4.public.a.b.c"):
        assert _reason(verifier, junk) == (2, "malformed")
    assert _reason(verifier, "v4.public." + "A" * 9000) == (2, "malformed")
    # Rotation: removing the key makes its leases unknown.
    verifier.remove_key(signer.kid)
    assert _reason(verifier, good) == (2, "unknown_kid")


def test_malformed_claims_rejected(signer: LeaseSigner, verifier: LeaseVerifier) -> None:
    base = _payload(_mint(signer))
    bad_variants: list[dict[str, object]] = [
        {**base, "hlimit": "30000"},
        {**base, "hlimit": 0},
        {**base, "slimit": True},
        {**base, "role": "admin"},
        {**base, "sid": "not-a-uuid"},
        {**base, "exp": "2030-01-02T03:09:05"},  # no offset
        {**base, "exp": base["nbf"]},
        {k: v for k, v in base.items() if k != "sub"},
    ]
    key = signer._private_key
    for variant in bad_variants:
        token = sign_v4_public(key, json.dumps(variant).encode())
        assert _reason(verifier, token) == (2, "bad_claims"), variant
    token = sign_v4_public(key, b'{"kid": "' + signer.kid.encode() + b'", "x": ')
    assert _reason(verifier, token)[0] == 2
    # "Z" suffix is accepted ISO 8601.
    ok = {**base, "exp": "2030-01-02T03:09:05Z"}
    claims = verifier.verify(sign_v4_public(key, json.dumps(ok).encode()), NOW, SID, "client")
    assert claims.exp == NOW + timedelta(minutes=5)


def test_mint_refuses_invalid(signer: LeaseSigner) -> None:
    with pytest.raises(ValueError):
        _mint(signer, role="admin")
    with pytest.raises(ValueError):
        _mint(signer, sid="nope")
    with pytest.raises(ValueError):
        _mint(signer, hlimit_kbps=0)
    with pytest.raises(ValueError):
        _mint(signer, lifetime=timedelta(0))
