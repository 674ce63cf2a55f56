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


def test_virtual_display_and_its_app_outlive_a_session(tmp_path: Path) -> None:
    """`--virtual --run CMD` is a desktop session: a client that leaves and comes back finds the
    same application (started once), and the host's end ends it."""
    from wavry.runtime.processes import running_host, wavry_env

    starts = tmp_path / "starts"
    app = f"sh -c 'echo $$ >> {starts}; exec sleep 600'"
    with running_host(
        ["--trust", "any", "--virtual", "--size", "320x240", "--fps", "30", "--run", app],
        wavry_env(tmp_path / "h"),
    ) as host:
        # at a fixed size the display and its application start with the host
        deadline = time.monotonic() + 10
        while not starts.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert starts.exists(), "the application did not start with the host"
        for _ in range(2):
            r = subprocess.run(
                [*WAVRY, "connect", host.target, "--headless", "--seconds", "1.5"],
                env=_env(tmp_path / "c"), capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            assert host.wait_line(r"ended: ", 10) is not None, host.text()
        pids = starts.read_text().split()
        assert len(pids) == 1, f"the application was started {len(pids)} times"
        os.kill(int(pids[0]), 0)  # still running between sessions
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(int(pids[0]), 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the application outlived the host")


def test_a_virtual_display_application_that_cannot_run_is_one_clear_error(tmp_path: Path) -> None:
    r = _host(tmp_path, "--virtual", "--size", "320x240", "--run", "no-such-program-here")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("error: cannot run 'no-such-program-here'"), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr + r.stdout
