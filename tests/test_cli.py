"""The `wavry` command end to end: real processes, real UDP on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wavry.runtime.processes import WavryProcess, free_udp_port, running_host, wavry_env

WAVRY = [sys.executable, "-m", "wavry"]


def env_for(home: Path) -> dict[str, str]:
    return wavry_env(home)


def read_until(host: WavryProcess, pattern: str) -> re.Match[str]:
    """The first line of the host's output matching ``pattern`` (waiting up to 15 s)."""
    m = host.wait_line(pattern, 15)
    assert m is not None, f"{pattern!r} not in host output: {host.text()[-3000:]}"
    return m


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
    with running_host(["--trust", "any"], wavry_env(tmp_path / "h")) as host:
        port = host.port
        read_until(host, "WARNING: --trust any")
        host_id = read_until(host, r"Wavry ID: (\S+)").group(1)
        r = wavry(tmp_path / "c", "ping", f"127.0.0.1:{port}", "--count", "5", "--json", "-")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["host_id"] == host_id
        assert data["sent"] == data["received"] == 5
        assert 0 < data["rtt_ms"]["min"] <= data["rtt_ms"]["p50"] <= data["rtt_ms"]["p95"]
        assert data["handshake_ms"] > 0 and data["clock_offset_ms"] is not None


def test_pairing_then_pin_mismatch_then_forget(tmp_path: Path) -> None:
    client_home = tmp_path / "c"
    with running_host(["--pair"], wavry_env(tmp_path / "h1")) as host:
        port = host.port
        code = read_until(host, r"Pairing code: (\d{3}) (\d{3})")
        # without a code (and no terminal) the client explains what to do
        r = wavry(client_home, "ping", f"127.0.0.1:{port}", "--count", "1")
        assert r.returncode == 1 and "--pair-code" in r.stderr
        r = wavry(
            client_home, "ping", f"127.0.0.1:{port}", "--count", "2",
            "--pair-code", code.group(1) + code.group(2),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        read_until(host, "paired and trusted")
        # now trusted: no code needed
        assert wavry(client_home, "ping", f"127.0.0.1:{port}", "--count", "2").returncode == 0
        trusted = json.loads((tmp_path / "h1" / "wavry" / "trusted_devices.json").read_text())
        assert len(trusted["devices"]) == 1
    # a different host identity on the same address: refused, with advice
    port2 = port
    with running_host(["--trust", "any"], wavry_env(tmp_path / "h2"), listen=f"127.0.0.1:{port2}"):
        r = wavry(client_home, "ping", f"127.0.0.1:{port2}", "--count", "1")
        assert r.returncode == 1
        assert "pinned" in r.stderr and f"wavry pins forget 127.0.0.1:{port2}" in r.stderr
        assert "Traceback" not in r.stderr
        f = wavry(client_home, "pins", "forget", f"127.0.0.1:{port2}")
        assert f.returncode == 0
        r = wavry(client_home, "ping", f"127.0.0.1:{port2}", "--count", "1")
        assert r.returncode == 0, r.stderr


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
    assert "unknown error" not in r.stderr.lower()  # a reason a user can act on


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
        "media_receive_le_3x_floor",
        "media_send_le_3x_floor",
    }
    media, send = data["media_datagram"], data["media_send"]
    assert media["clock"] == "cpu" and media["full_us_p50"] > media["floor_us_p50"] > 0
    assert send["full_us_p50"] > 0 and send["floor_us_p50"] > 0
    assert "per-datagram receive" in r.stdout and "media send path" in r.stdout


def test_demo_runs(tmp_path: Path) -> None:
    r = wavry(tmp_path, "demo", "--seconds", "2", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "per-stage latency" in r.stdout and "whole session" in r.stdout
    assert "start-up: first frame" in r.stdout
    assert "fps shown" in r.stderr  # live stats of the last second while it runs
    if "picture: virtual" in r.stdout + r.stderr:  # Xvfb present: the demo app on it
        assert "captured on change" in r.stdout + r.stderr


def test_demo_app_keeps_its_rate_whatever_drawing_takes() -> None:
    from wavry.runtime.demo_app import next_tick

    period = 1 / 60
    # drawing took 10 ms: the next picture is still one period after the last tick
    assert next_tick(1.0, 1.010, period) == pytest.approx(1.0 + period)
    # a stall of 50 ms: the missed ticks are skipped, the next one is in the future, on the grid
    due = next_tick(1.0, 1.050, period)
    assert 1.050 < due <= 1.050 + period
    assert (due - 1.0) / period == pytest.approx(round((due - 1.0) / period))


def test_host_streams_synthetic_to_headless_connect(tmp_path: Path) -> None:
    with running_host(
        ["--trust", "any", "--source", "synthetic", "--size", "640x360"], wavry_env(tmp_path / "h")
    ) as host:
        port = host.port
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


def test_connect_events_json_reports_and_stops_when_stdin_ends(tmp_path: Path) -> None:
    """`--events-json -`: hello, connected, stats, then the end of stdin (the driver went
    away) ends the session with an `ended` line carrying the summary."""
    with running_host(
        ["--trust", "any", "--source", "synthetic", "--size", "320x180"], wavry_env(tmp_path / "h")
    ) as host:
        proc = subprocess.Popen(
            [*WAVRY, "connect", f"127.0.0.1:{host.port}", "--headless", "--no-live-stats",
             "--events-json", "-", "--seconds", "60"],
            env=env_for(tmp_path / "c"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            events = []
            for line in proc.stdout:
                events.append(json.loads(line))  # stdout carries nothing but events
                if events[-1]["type"] == "stats" and events[-1]["frames_shown"] > 0:
                    break
            kinds = [e["type"] for e in events]
            assert kinds[0] == "hello" and "connected" in kinds, kinds
            proc.stdin.close()  # the driver goes away: the stream ends with it
            rest = [json.loads(line) for line in proc.stdout]
            assert proc.wait(timeout=15) in (0, 130), proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert rest[-1]["type"] == "ended" and rest[-1]["summary"]["frames_presented"] > 0


def test_connect_events_json_errors(tmp_path: Path) -> None:
    r = wavry(
        tmp_path, "connect", "127.0.0.1:9", "--events-json", "-", "--stats-json", "-", timeout=20
    )
    assert r.returncode == 2 and r.stderr.startswith("error: --events-json - and --stats-json -")
    # nobody there: an `error` event and the same one line on stderr (stdin stays open: its end
    # would stop the session before it failed)
    proc = subprocess.Popen(
        [*WAVRY, "connect", f"127.0.0.1:{free_udp_port()}", "--headless", "--events-json", "-",
         "--timeout-seconds", "1"],
        env=env_for(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=30) == 1 and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "error" and err.strip().endswith(events[-1]["message"])
