"""`wavry host` as a newcomer meets it (issue 16): `--display :N` alone streams that display, a
display that does not exist or goes away is one clear line, contradicting flags are a usage
error, a port in use keeps its reason, the banner says `wavry connect`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wavry.platform.xvfb import XvfbServer

WAVRY = [sys.executable, "-m", "wavry"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def _host(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WAVRY, "host", "--listen", "127.0.0.1:0", *args],
        env=_env(home, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_display_that_does_not_exist_is_one_clear_error(tmp_path: Path) -> None:
    r = _host(tmp_path, "--display", ":999")
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert ":999" in r.stderr and "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("other", [["--virtual"], ["--source", "synthetic"]])
def test_display_with_another_source_is_a_usage_error(tmp_path: Path, other: list[str]) -> None:
    r = _host(tmp_path, "--display", ":5", *other)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: --display :5 names an X display"), r.stderr


def test_port_in_use_says_why(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        r = subprocess.run(
            [*WAVRY, "host", "--listen", f"127.0.0.1:{port}", "--source", "synthetic"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 1
    assert r.stderr == f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"


def test_display_alone_streams_it_and_its_end_is_one_line(tmp_path: Path) -> None:
    """`--display :N` without --source (DISPLAY unset) captures :N; when that X server goes away
    mid-session the host says so in one line and exits 1, no traceback."""
    server = XvfbServer(320, 240).start()
    name = server.display
    try:
        auth = str(server.auth_file)
        host = subprocess.Popen(
            [*WAVRY, "host", "--listen", "127.0.0.1:0", "--trust", "any",
             "--display", name, "--fps", "30"],
            env=_env(tmp_path / "h", XAUTHORITY=auth),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert host.stdout is not None
        banner: list[str] = []
        port = None
        while port is None:
            line = host.stdout.readline()
            assert line, "host ended: " + "".join(banner)
            banner.append(line)
            if m := re.search(r"listening on udp://127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        while not banner[-1].startswith("  audio:"):
            banner.append(host.stdout.readline())
        text = "".join(banner)
        assert f"connect with: wavry connect 127.0.0.1:{port}" in text
        assert f"picture: x11 320x240@30 (--display {name}" in text, text
        client = subprocess.Popen(
            [*WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--seconds", "20"],
            env=_env(tmp_path / "c"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while "video encoder" not in (line := host.stdout.readline()):
                assert line and time.monotonic() < deadline, "no stream started"
            server.stop()  # the X server goes away mid-session
            out, err = host.communicate(timeout=20)
        finally:
            client.kill()
            client.wait(10)
        assert host.returncode == 1, err
        assert err == f"error: the X display {name} went away: nothing left to share\n"
        assert "Traceback" not in out
    finally:
        server.stop()
