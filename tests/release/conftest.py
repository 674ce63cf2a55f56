"""Shared fixtures of the release tests: the container images (built once per run, cached by
podman between runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

import wavry
from tests.release.support import BUILD_TIMEOUT, HERE, ROOT, Images


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run scripts/setup.sh (it installs it)")


@pytest.fixture(scope="session")
def images() -> Iterator[Images]:
    if os.geteuid() != 0:
        pytest.skip("container images need root (podman's root storage, debootstrap)")
    for tool in ("podman", "runc", "debootstrap"):
        _need(tool)
    r = subprocess.run(
        [str(ROOT / "scripts/images.sh"), "build", "--quiet"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    conf = subprocess.run(
        [str(ROOT / "scripts/images.sh"), "conf"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = dict(os.environ, CONTAINERS_CONF=conf)
    # Stand-ins for the official postgres:15 and redis:7 images, under their names (test only).
    for name, tag in (
        ("postgres", "docker.io/library/postgres:15"),
        ("redis", "docker.io/library/redis:7"),
    ):
        r = subprocess.run(
            [
                "podman",
                "build",
                "--quiet",
                "--pull=never",
                "--format",
                "docker",
                "--network",
                "host",
                "-f",
                str(HERE / "images" / f"Containerfile.{name}"),
                "-t",
                tag,
                str(HERE / "images"),
            ],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            env=env,
            check=False,
        )
        assert r.returncode == 0, r.stderr[-3000:]
    v = wavry.__version__
    yield Images(conf, env, v, f"localhost/wavry-gateway:{v}", f"localhost/wavry-relay:{v}")
