"""The control-plane images from deploy/: built with podman from a base image made here (no
registry), then run as deploy/compose.yaml runs them — gateway, relay, PostgreSQL, Redis — and a
control-plane smoke against the containers."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.release.compose_pod import Project
from tests.release.support import BUILD_TIMEOUT, ROOT, Images

pytestmark = [pytest.mark.slow, pytest.mark.images, pytest.mark.timeout(BUILD_TIMEOUT + 600)]

# The images' size budget (uncompressed, as `podman images` shows it): the 122 MB base plus the
# services' dependency set. A development tool or the streaming stack slipping in breaks it.
MAX_IMAGE_BYTES = 320_000_000


def podman(images: Images, *args: str, timeout: float = 120) -> str:
    r = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=images.env,
        check=False,
    )
    assert r.returncode == 0, f"podman {' '.join(args)}: {r.stderr[-2000:]}"
    return r.stdout


def test_images_are_small_unprivileged_and_carry_health_checks(images: Images) -> None:
    for image, uid, port in ((images.gateway, "10001", 3000), (images.relay, "10002", 9091)):
        [info] = json.loads(podman(images, "image", "inspect", image))
        assert info["Config"]["User"].split(":")[0] == uid, info["Config"]
        check = info.get("Healthcheck") or {}
        assert f"127.0.0.1:{port}/ready" in " ".join(check.get("Test", [])), info
        print(f"{image}: {info['Size'] / 1e6:.0f} MB")
        assert info["Size"] < MAX_IMAGE_BYTES, f"{image} is {info['Size'] / 1e6:.0f} MB"
        # read-only root, every capability dropped, no network: the command still runs
        out = podman(
            images,
            "run",
            "--rm",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--network",
            "none",
            "--entrypoint",
            "wavry",
            image,
            "--version",
        )
        assert out.strip() == f"wavry {images.version}"
    # only the services' set is installed: no streaming stack, no development tools
    out = podman(
        images,
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        images.relay,
        "-c",
        "import importlib.util as u; print([m for m in "
        "('av', 'numpy', 'PySide6', 'pytest', 'mypy', 'playwright', 'gi') "
        "if u.find_spec(m)])",
    )
    assert out.strip() == "[]"


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"release-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_compose_stack_serves_the_control_plane(images: Images, netns: str) -> None:
    admin_token = secrets.token_urlsafe(32)
    env = {
        "WAVRY_GATEWAY_TOTP_KEY": Fernet.generate_key().decode(),
        "WAVRY_ADMIN_TOKEN": admin_token,
        "WAVRY_RELAY_TOKEN": secrets.token_urlsafe(24),
        "WAVRY_RELAY_PUBLIC_ADDR": "127.0.0.1:4000",
        # every character that breaks a URL's user-info part unescaped
        "POSTGRES_PASSWORD": "p@ss:w/rd#%?&=" + secrets.token_hex(4),
        "WAVRY_VERSION": images.version,
    }
    project = Project(
        ROOT / "deploy/compose.yaml", env, f"release-{uuid.uuid4().hex[:8]}", netns, images.env
    )
    try:
        waited = project.up(timeout=240)
        assert set(waited) == {"postgres", "redis", "gateway"}, waited
        project.wait_healthy("relay", timeout=120)
        # the images' own HEALTHCHECKs pass too (what `docker run` without compose uses)
        for service in ("gateway", "relay"):
            cmd = project.image_healthcheck(service)
            assert cmd is not None and project.exec_ok(service, cmd), service
        for service in ("gateway", "relay"):
            ro = podman(
                images,
                "inspect",
                "--format",
                "{{.HostConfig.ReadonlyRootfs}}",
                project.container(service),
            )
            assert ro.strip() == "true"
        smoke = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                str(Path(__file__).parent / "smoke.py"),
                "--gateway",
                "http://127.0.0.1:3000",
                "--relay-http",
                "http://127.0.0.1:9091",
                "--admin-token",
                admin_token,
                "--stun",
                "127.0.0.1:3478",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert smoke.returncode == 0, smoke.stderr + project.logs("gateway")[-3000:]
        seen = json.loads(smoke.stdout)
        assert seen["health"] == {"status": "ok", "version": images.version}
        assert seen["signaling"] == "ready" and seen["relays"] == [["relay-1", "healthy"]]
        assert seen["stun"][0] == "127.0.0.1"
        # restart policy: the relay's process ends (SIGTERM from inside: a clean exit 0); the
        # container comes back by itself and registers again
        before = project.state("relay")
        project.exec_ok("relay", ["python", "-c", "import os, signal; os.kill(1, signal.SIGTERM)"])
        project.wait_healthy("relay", timeout=90)
        after = project.state("relay")
        assert after["started_at"] != before["started_at"], (before, after)
        for service in ("gateway", "relay"):
            assert "Traceback" not in project.logs(service), project.logs(service)[-3000:]
    finally:
        project.down()
