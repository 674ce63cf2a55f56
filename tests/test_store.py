"""Identity, trusted devices and pins on disk: creation, permissions, bad files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wavry.rift.identity import public_key_from_wavry_id
from wavry.store import KnownHosts, StoreError, TrustedDevices, load_or_create_identity


def test_identity_created_once_with_mode_0600(tmp_path: Path) -> None:
    a = load_or_create_identity(tmp_path)
    b = load_or_create_identity(tmp_path)
    assert a.wavry_id == b.wavry_id and len(a.wavry_id) == 43
    assert public_key_from_wavry_id(a.wavry_id) == a.public_key
    mode = stat.S_IMODE((tmp_path / "identity.pem").stat().st_mode)
    assert mode == 0o600


def test_identity_refuses_open_permissions(tmp_path: Path) -> None:
    load_or_create_identity(tmp_path)
    (tmp_path / "identity.pem").chmod(0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        load_or_create_identity(tmp_path)


def test_identity_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "identity.pem"
    p.write_text("garbage")
    p.chmod(0o600)
    with pytest.raises(StoreError, match="not a valid identity key"):
        load_or_create_identity(tmp_path)
    assert p.read_text() == "garbage"  # nothing changed


def test_trusted_devices_roundtrip_and_bad_file(tmp_path: Path) -> None:
    t = TrustedDevices(tmp_path)
    ident = load_or_create_identity(tmp_path)
    t.add(ident.wavry_id, "laptop")
    assert t.ids() == {ident.wavry_id}
    assert t.remove(ident.wavry_id) and not t.remove(ident.wavry_id)
    t.path.write_text("{not json")
    with pytest.raises(StoreError):
        t.load()
    t.path.write_text('{"devices": [{"wavry_id": "nope", "added": 1}]}')
    with pytest.raises(StoreError, match="bad entry"):
        t.load()


def test_known_hosts(tmp_path: Path) -> None:
    k = KnownHosts(tmp_path)
    assert k.get("h:1") is None
    k.pin("h:1", "X" * 43)
    assert k.get("h:1") is not None and k.get("h:1").wavry_id == "X" * 43  # type: ignore[union-attr]
    assert k.forget("h:1") and not k.forget("h:1")
    k.path.write_text("[]")
    with pytest.raises(StoreError):
        k.load()


def test_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wavry.store import config_dir

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_dir() == tmp_path / "wavry"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_dir() == tmp_path / ".config" / "wavry"
