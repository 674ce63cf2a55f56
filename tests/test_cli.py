"""The `wavry` command end to end: real processes, real UDP on loopback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

WAVRY = [sys.executable, "-m", "wavry"]


def env_for(home: Path) -> dict[str, str]:
    return dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def host_process(home: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    port = free_udp_port()
    proc = subprocess.Popen(
        [*WAVRY, "host", "--listen", f"127.0.0.1:{port}", *args],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on udp://" in line:
            break
    else:
        proc.kill()
        raise AssertionError("host did not start: " + "".join(lines))
    try:
        yield proc, port, lines
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def read_until(proc: subprocess.Popen[str], pattern: str, lines: list[str]) -> re.Match[str]:
    rx = re.compile(pattern)
    for line in lines:
        if m := rx.search(line):
            return m
    assert proc.stdout is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := rx.search(line):
            return m
    raise AssertionError(f"{pattern!r} not in host output: {''.join(lines)}")


def wavry(home: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WAVRY, *args], env=env_for(home), capture_output=True, text=True, timeout=timeout
    )


def test_id_is_stable_and_private(tmp_path: Path) -> None:
    a = wavry(tmp_path, "id")
    b = wavry(tmp_path, "id", "--json", "-")
    assert a.returncode == 0 and len(a.stdout.strip()) == 43
    assert json.loads(b.stdout)["wavry_id"] == a.stdout.strip()
    assert (tmp_path / "wavry" / "identity.pem").stat().st_mode & 0o777 == 0o600


def test_host_trust_any_and_ping_json(tmp_path: Path) -> None:
    with host_process(tmp_path / "h", "--trust", "any") as (proc, port, lines):
        assert any("WARNING: --trust any" in line for line in lines) or read_until(
            proc, "WARNING: --trust any", lines
        )
        host_id = read_until(proc, r"Wavry ID: (\S+)", lines).group(1)
        r = wavry(tmp_path / "c", "ping", f"127.0.0.1:{port}", "--count", "5", "--json", "-")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["host_id"] == host_id
        assert data["sent"] == data["received"] == 5
        assert 0 < data["rtt_ms"]["min"] <= data["rtt_ms"]["p50"] <= data["rtt_ms"]["p95"]
        assert data["handshake_ms"] > 0 and data["clock_offset_ms"] is not None


def test_pairing_then_pin_mismatch_then_forget(tmp_path: Path) -> None:
    client_home = tmp_path / "c"
    with host_process(tmp_path / "h1", "--pair") as (proc, port, lines):
        code = read_until(proc, r"Pairing code: (\d{3}) (\d{3})", lines)
        # without a code (and no terminal) the client explains what to do
        r = wavry(client_home, "ping", f"127.0.0.1:{port}", "--count", "1")
        assert r.returncode == 1 and "--pair-code" in r.stderr
        r = wavry(
            client_home, "ping", f"127.0.0.1:{port}", "--count", "2",
            "--pair-code", code.group(1) + code.group(2),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        read_until(proc, "paired and trusted", lines)
        # now trusted: no code needed
        assert wavry(client_home, "ping", f"127.0.0.1:{port}", "--count", "2").returncode == 0
        trusted = json.loads((tmp_path / "h1" / "wavry" / "trusted_devices.json").read_text())
        assert len(trusted["devices"]) == 1
    # a different host identity on the same address: refused, with advice
    port2 = port
    proc2 = subprocess.Popen(
        [*WAVRY, "host", "--listen", f"127.0.0.1:{port2}", "--trust", "any"],
        env=env_for(tmp_path / "h2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        read_until(proc2, "listening on udp://", [])
        r = wavry(client_home, "ping", f"127.0.0.1:{port2}", "--count", "1")
        assert r.returncode == 1
        assert "pinned" in r.stderr and f"wavry pins forget 127.0.0.1:{port2}" in r.stderr
        assert "Traceback" not in r.stderr
        f = wavry(client_home, "pins", "forget", f"127.0.0.1:{port2}")
        assert f.returncode == 0
        r = wavry(client_home, "ping", f"127.0.0.1:{port2}", "--count", "1")
        assert r.returncode == 0, r.stderr
    finally:
        proc2.terminate()
        proc2.wait(5)


def test_ping_without_host_fails_clearly(tmp_path: Path) -> None:
    r = wavry(
        tmp_path, "ping", f"127.0.0.1:{free_udp_port()}", "--timeout-seconds", "1", "--count", "1"
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("listen", ["nonsense:99999", "256.1.1.1:5", "[::1"])
def test_bad_listen_is_one_clear_line(tmp_path: Path, listen: str) -> None:
    r = wavry(tmp_path, "host", "--listen", listen, timeout=20)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error:")
    assert len(r.stderr.strip().splitlines()) == 1


def test_bench_transport_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = wavry(tmp_path, "bench", "transport", "--quick", "--json", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["handshake"]["host_side_per_s"] > 0
    assert data["datagram"]["full_us_p50"] > 0 and data["datagram"]["floor_us_p50"] > 0
    assert set(data["targets"]) == {
        "handshakes_per_s_ge_500",
        "per_datagram_le_15us",
        "per_datagram_le_3x_floor",
    }
    assert "per-datagram receive" in r.stdout


def test_demo_runs(tmp_path: Path) -> None:
    r = wavry(tmp_path, "demo", "--seconds", "2", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "per-stage latency" in r.stdout and "whole session" in r.stdout
    assert "start-up: first frame" in r.stdout
    assert "fps shown" in r.stderr  # live stats of the last second while it runs


def test_host_streams_synthetic_to_headless_connect(tmp_path: Path) -> None:
    with host_process(
        tmp_path / "h", "--trust", "any", "--source", "synthetic", "--size", "640x360"
    ) as (
        _proc,
        port,
        _lines,
    ):
        stats = tmp_path / "stats.json"
        snap = tmp_path / "snap.png"
        r = wavry(
            tmp_path / "c", "connect", f"127.0.0.1:{port}", "--headless", "--seconds", "3",
            "--stats-json", str(stats), "--snapshot", str(snap),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        data = json.loads(stats.read_text())
        assert data["frames_presented"] > 60
        assert 0 < data["e2e_latency_ms"]["p50"] < 500
        assert set(data["stages_ms"]) >= {"capture", "encode", "network", "decode", "present"}
        assert data["stages_ms"]["encode"] > 0 and data["stages_ms"]["decode"] > 0
        assert snap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "host monitors: 0:synthetic 640x360" in r.stderr
