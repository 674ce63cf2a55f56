"""The Python packages: `python -m build` makes an sdist and, from that sdist, a wheel (so the
sdist is proven to build); the wheel installs with Debian's pipx into a clean environment where
`wavry --version`, `wavry demo` (headless) and an import of every module work. Both carry every
file the package reads at run time, and the version from `wavry.__version__`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import wavry
from tests.release.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# Extras not installed in the pipx test (bench: aiortc, matplotlib; wayland: PyGObject, which
# compiles; desktop: Qt, a large download): a module may fail to import only for want of one of
# these.
NOT_INSTALLED = {"aiortc", "matplotlib", "gi", "pywayland", "PySide6", "qasync", "keyring"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    # the tracked files only, as a fresh clone has them (no stale egg-info to fill the gaps)
    src = tmp_path_factory.mktemp("src")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    r = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    yield out


def one(dist: Path, pattern: str) -> Path:
    [path] = dist.glob(pattern)
    return path


def test_semantic_version_is_the_single_source() -> None:
    assert re.fullmatch(
        r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?", wavry.__version__
    ), wavry.__version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wavry.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and "Keep a Changelog" in changelog


def test_wheel_and_sdist_carry_the_package_and_its_data(dist: Path) -> None:
    version = wavry.__version__
    wheel = one(dist, f"wavry-{version}-py3-none-any.whl")
    sdist = one(dist, f"wavry-{version}.tar.gz")
    tracked = subprocess.run(
        ["git", "ls-files", "src/wavry"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(f"wavry-{version}.dist-info/METADATA").decode()
    with tarfile.open(sdist) as t:
        snames = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    missing = [p for p in tracked if p.removeprefix("src/") not in names]
    assert not missing, f"tracked files missing from the wheel (pyproject package-data): {missing}"
    missing = [p for p in tracked if p not in snames]
    assert not missing, f"tracked files missing from the sdist: {missing}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "PKG-INFO"} <= snames
    assert not [n for n in snames if n.startswith("tests/")]
    assert f"\nVersion: {version}\n" in meta
    for extra in ("services", "stream", "wayland", "desktop", "bench", "dev"):
        assert f"Provides-Extra: {extra}" in meta


def _clean_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        PIPX_HOME=str(home / "pipx"),
        PIPX_BIN_DIR=str(home / "bin"),
        PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache/pip")),
    )
    return env


def test_pipx_installs_the_wheel_and_it_runs(dist: Path, tmp_path: Path) -> None:
    pipx = shutil.which("pipx")
    assert pipx, "pipx is not installed: run scripts/setup.sh"
    wheel = one(dist, "wavry-*.whl")
    env = _clean_env(tmp_path)
    r = subprocess.run(
        [pipx, "install", f"{wheel}[stream,services]"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    exe = tmp_path / "bin/wavry"
    out = subprocess.run(
        [exe, "--version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == f"wavry {wavry.__version__}"
    python = tmp_path / "pipx/venvs/wavry/bin/python"
    r = subprocess.run(
        [python, str(Path(__file__).parent / "import_all.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    seen = json.loads(r.stdout)
    assert seen["file"].startswith(str(tmp_path / "pipx/venvs/wavry/")), seen["file"]
    bad = {
        m: e
        for m, e in seen["failed"].items()
        if not any(e.endswith(f"(missing: {name})") for name in NOT_INSTALLED)
    }
    assert not bad, bad
    assert seen["imported"] > 100
    # headless (no DISPLAY): a host process and a client on loopback, statistics at the end
    r = subprocess.run(
        [exe, "demo", "--seconds", "3"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "per-stage latency" in r.stdout and "frames shown" in r.stdout, r.stdout[-2000:]
