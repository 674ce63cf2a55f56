"""scripts/release.sh: every artifact of a release in dist/ with SHA256SUMS and manifest.json
that match the files, OCI archives that load back into podman and run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

import wavry
from tests.release.support import BUILD_TIMEOUT, ROOT, Images

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT + 300)]

PACKAGES = {"wheel", "sdist", "systemd-unit"}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def release(out: Path, *args: str) -> None:
    r = subprocess.run(
        [str(ROOT / "scripts/release.sh"), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]


def check_artifacts(out: Path, v: str, kinds: set[str]) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "wavry" and manifest["version"] == v
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    files = {p.name for p in out.iterdir()} - {"SHA256SUMS", "manifest.json"}
    assert set(by_name) == files
    expected = {
        f"wavry-{v}-py3-none-any.whl": "wheel",
        f"wavry-{v}.tar.gz": "sdist",
        f"wavry-gateway-{v}.oci.tar": "oci-image",
        f"wavry-relay-{v}.oci.tar": "oci-image",
        "wavry-gateway.service": "systemd-unit",
        "wavry-relay.service": "systemd-unit",
        "wavry-host.service": "systemd-unit",
    }
    expected = {n: k for n, k in expected.items() if k in kinds}
    assert {n: a["kind"] for n, a in by_name.items()} == expected
    sums = {}
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert set(sums) == files
    for name, art in by_name.items():
        path = out / name
        assert art["version"] == v and art["size"] == path.stat().st_size
        assert sha256(path) == art["sha256"] == sums[name], name
    # the standard tool agrees, and notices a changed byte
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out, check=True)
    unit = out / "wavry-host.service"
    unit.write_text(unit.read_text() + "#")
    bad = subprocess.run(
        ["sha256sum", "--quiet", "-c", "SHA256SUMS"],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0 and "wavry-host.service: FAILED" in bad.stdout


def test_release_without_images_writes_checked_packages(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    release(out, "--no-images")
    check_artifacts(out, wavry.__version__, PACKAGES)


@pytest.mark.images
def test_release_writes_checked_artifacts(images: Images, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    release(out, "--no-check")
    v = images.version
    check_artifacts(out, v, PACKAGES | {"oci-image"})
    # an OCI archive is an OCI image layout that loads back and runs
    for name in ("gateway", "relay"):
        archive = out / f"wavry-{name}-{v}.oci.tar"
        with tarfile.open(archive) as t:
            assert {"oci-layout", "index.json"} <= set(t.getnames())
            index = json.load(t.extractfile("index.json"))  # type: ignore[arg-type]
        ref = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        assert ref.endswith(f"wavry-{name}:{v}"), ref
        subprocess.run(
            ["podman", "load", "-q", "-i", str(archive)],
            env=images.env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        loaded = subprocess.run(
            [
                "podman",
                "run",
                "--rm",
                "--read-only",
                "--network",
                "none",
                "--entrypoint",
                "wavry",
                f"localhost/wavry-{name}:{v}",
                "--version",
            ],
            env=images.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert loaded.stdout.strip() == f"wavry {v}", loaded.stderr
