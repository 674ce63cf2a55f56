"""On-disk state under the XDG config directory: identity key, trusted devices, host pins.

Files (in `$XDG_CONFIG_HOME/wavry/`, default `~/.config/wavry/`):
- `identity.pem`: this device's Ed25519 private key (PKCS#8 PEM, mode 0600);
- `trusted_devices.json`: Wavry IDs of clients this host accepts without pairing;
- `known_hosts.json`: host Wavry IDs pinned per address on first use.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wavry.atomicfile import atomic_write
from wavry.rift.identity import Identity, InvalidWavryId, public_key_from_wavry_id


class StoreError(Exception):
    """A state file that cannot be used; the message says which file and what to do."""


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wavry"


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wavry"


_atomic_write = atomic_write


def load_or_create_identity(directory: Path | None = None) -> Identity:
    """This device's identity; created (mode 0600) on first use."""
    path = (directory or config_dir()) / "identity.pem"
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise StoreError(
                f"{path} is readable by other users (mode {mode:o}); "
                f"run `chmod 600 {path}` and try again"
            )
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise StoreError(
                f"{path} is not a valid identity key ({exc}); move it away to create a new "
                "identity (paired hosts will then need to pair this device again)"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise StoreError(f"{path} does not hold an Ed25519 key")
        return Identity(key)
    identity = Identity.generate()
    pem = identity._private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _atomic_write(path, pem, 0o600)
    return identity


def _load_json(path: Path, what: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {what} from {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{path} does not contain a JSON object; fix or remove it")
    return data


@dataclass(frozen=True, slots=True)
class TrustedDevice:
    wavry_id: str
    name: str
    added: float


class TrustedDevices:
    """The host's list of clients it accepts without pairing."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / "trusted_devices.json"

    def load(self) -> list[TrustedDevice]:
        data = _load_json(self.path, "trusted devices")
        out: list[TrustedDevice] = []
        for entry in data.get("devices", []):
            try:
                wid = str(entry["wavry_id"])
                public_key_from_wavry_id(wid)
                out.append(TrustedDevice(wid, str(entry.get("name", "")), float(entry["added"])))
            except (KeyError, TypeError, ValueError, InvalidWavryId) as exc:
                raise StoreError(f"bad entry in {self.path}: {entry!r} ({exc})") from exc
        return out

    def ids(self) -> set[str]:
        return {d.wavry_id for d in self.load()}

    def add(self, wavry_id: str, name: str) -> None:
        devices = [d for d in self.load() if d.wavry_id != wavry_id]
        devices.append(TrustedDevice(wavry_id, name, time.time()))
        self._save(devices)

    def remove(self, wavry_id: str) -> bool:
        devices = self.load()
        kept = [d for d in devices if d.wavry_id != wavry_id]
        if len(kept) == len(devices):
            return False
        self._save(kept)
        return True

    def _save(self, devices: list[TrustedDevice]) -> None:
        doc = {
            "devices": [{"wavry_id": d.wavry_id, "name": d.name, "added": d.added} for d in devices]
        }
        _atomic_write(self.path, (json.dumps(doc, indent=2) + "\n").encode())


@dataclass(frozen=True, slots=True)
class HostPin:
    address: str
    wavry_id: str
    first_seen: float


class KnownHosts:
    """Host identities pinned on first use, per address ("host:port")."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / "known_hosts.json"

    def load(self) -> dict[str, HostPin]:
        data = _load_json(self.path, "known hosts")
        out: dict[str, HostPin] = {}
        for addr, entry in data.get("hosts", {}).items():
            try:
                out[addr] = HostPin(addr, str(entry["wavry_id"]), float(entry["first_seen"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"bad entry for {addr} in {self.path} ({exc})") from exc
        return out

    def get(self, address: str) -> HostPin | None:
        return self.load().get(address)

    def pin(self, address: str, wavry_id: str) -> None:
        pins = self.load()
        pins[address] = HostPin(address, wavry_id, time.time())
        self._save(pins)

    def forget(self, address: str) -> bool:
        pins = self.load()
        if pins.pop(address, None) is None:
            return False
        self._save(pins)
        return True

    def _save(self, pins: dict[str, HostPin]) -> None:
        doc = {
            "hosts": {
                a: {"wavry_id": p.wavry_id, "first_seen": p.first_seen} for a, p in pins.items()
            }
        }
        _atomic_write(self.path, (json.dumps(doc, indent=2) + "\n").encode())
