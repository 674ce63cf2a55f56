"""The systemd units in deploy/systemd/: `systemd-analyze verify` accepts them (system units in a
scratch root holding systemd's own units and the /opt/wavry install they start; the user unit in
user mode with a scratch home), the system units carry the hardening, and their offline exposure
score stays low."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.release.support import ROOT

UNITS = ROOT / "deploy/systemd"
SYSTEM = ("wavry-gateway.service", "wavry-relay.service")
HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
}


def directives(path: Path) -> dict[str, str]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def analyzer() -> str:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: run scripts/setup.sh (Debian package systemd)"
    return tool


def executable(path: Path) -> None:
    """A stand-in for the installed command that runs this checkout's wavry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec {sys.executable} -m wavry "$@"\n')
    path.chmod(0o755)


def scratch_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for units in ("/lib/systemd/system", "/usr/lib/systemd/user"):
        if Path(units).is_dir():
            shutil.copytree(units, root / units.lstrip("/"), symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in SYSTEM:
        shutil.copy(UNITS / name, root / "etc/systemd/system" / name)
    executable(root / "opt/wavry/bin/wavry")
    return root


def test_system_units_verify_and_are_hardened(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    r = subprocess.run(
        [analyzer(), "verify", "--man=no", f"--root={root}", *SYSTEM],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stderr
    for name in SYSTEM:
        d = directives(UNITS / name)
        for key, value in HARDENING.items():
            assert d.get(key) == value, f"{name}: {key}={d.get(key)!r}, want {value!r}"
        assert d["ExecStart"].startswith("/opt/wavry/bin/wavry ")
        r = subprocess.run(
            [analyzer(), "security", "--offline=yes", f"--root={root}", name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        assert m, r.stdout[-500:] + r.stderr
        print(f"{name}: exposure {m.group(1)} (0 = fully sandboxed, 10 = none)")
        assert float(m.group(1)) <= 2.0
    gateway = directives(UNITS / "wavry-gateway.service")
    assert gateway["StateDirectory"] == "wavry-gateway"
    assert "--data-dir %S/wavry-gateway" in gateway["ExecStart"]


def test_system_unit_verify_fails_on_a_broken_unit(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    unit = root / "etc/systemd/system/wavry-relay.service"
    unit.write_text(unit.read_text().replace("/opt/wavry/bin/wavry", "/opt/wavry/bin/nowhere"))
    r = subprocess.run(
        [analyzer(), "verify", "--man=no", f"--root={root}", "wavry-relay.service"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0 and "nowhere" in r.stderr


def test_user_unit_for_the_host_verifies(tmp_path: Path) -> None:
    home, runtime = tmp_path / "home", tmp_path / "run"
    runtime.mkdir(mode=0o700)
    executable(home / ".local/bin/wavry")
    unit = UNITS / "wavry-host.service"
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    r = subprocess.run(
        [analyzer(), "--user", "verify", "--man=no", str(unit)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    d = directives(unit)
    assert d["WantedBy"] == "graphical-session.target"
    assert d["PartOf"] == "graphical-session.target" and d["After"] == "graphical-session.target"
    assert d["ExecStart"] == "%h/.local/bin/wavry host"
    # the command line the unit runs is one `wavry host` accepts
    r = subprocess.run(
        [str(home / ".local/bin/wavry"), "host", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
