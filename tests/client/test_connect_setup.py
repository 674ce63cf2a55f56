"""`wavry connect` set-up as a newcomer meets it (issue 16): input checked before connecting,
pairing codes as the host shows them, a prompt that asks again, one clear line for each
expected failure, and what the client asks for in Hello. Real processes on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from wavry.runtime.session import (
    PairingPrompt,
    Prompts,
    SessionFailed,
    check_host_id,
    establish,
    normalize_pair_code,
)

WAVRY = [sys.executable, "-m", "wavry"]


def run(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30):  # type: ignore[no-untyped-def]
    e = dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1")
    e.update(env or {})
    t0 = time.monotonic()
    r = subprocess.run([*WAVRY, *args], env=e, capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


@contextmanager
def host(home: Path, *args: str) -> Iterator[tuple[int, list[str]]]:
    """`wavry host` on a free port; its output lines keep coming in (a reader thread)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    p = subprocess.Popen([*WAVRY, "host", "--listen", f"127.0.0.1:{port}", *args],
                         env=dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines: list[str] = []
    assert p.stdout is not None
    threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        wait_line(lines, "listening on udp://")
        yield port, lines
    finally:
        p.terminate()
        p.wait(5)


def wait_line(lines: list[str], pattern: str, timeout: float = 15) -> re.Match[str]:
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in list(lines):
            if m := rx.search(line):
                return m
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in: {''.join(lines)}")


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def test_pair_codes_as_shown() -> None:
    assert normalize_pair_code("054 270") == "054270"
    assert normalize_pair_code("054-270") == "054270"
    assert normalize_pair_code(" 054270 ") == "054270"
    for bad in ("05427", "0542700", "abc def", "٠٥٤٢٧٠"):
        with pytest.raises(ValueError, match="6 digits"):
            normalize_pair_code(bad)


def test_host_id_format() -> None:
    good = "ID00vVX4zeNHKnLsJOi0wmFP8Bn3HwZwWsgFmzWkTRM"
    assert check_host_id(good) == good
    with pytest.raises(ValueError, match="not a Wavry ID"):
        check_host_id("garbage")


def test_bad_input_fails_before_connecting(tmp_path: Path) -> None:
    """Each mistake is one line, and nothing was sent to the address: checked before
    connecting (a listening socket stands where the host would be)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        target = f"127.0.0.1:{listener.getsockname()[1]}"
        r, _ = run(tmp_path, "connect", target, "--headless", "--host-id", "garbage")
        assert r.returncode == 1 and "not a Wavry ID" in one_error_line(r.stderr)
        r, _ = run(tmp_path, "connect", target, "--headless", "--pair-code", "12345")
        assert r.returncode == 1 and "6 digits" in one_error_line(r.stderr)
        r, _ = run(tmp_path, "connect", target, "--bitrate-kbps", "8000",
                   "--max-bitrate-kbps", "300")  # fmt: skip
        assert r.returncode == 2 and "is below --bitrate-kbps" in r.stderr
        # a window without a display: said at once, not after a handshake
        r, _ = run(tmp_path, "connect", target, env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
        assert r.returncode == 1 and "display" in one_error_line(r.stderr)
        with pytest.raises(BlockingIOError):
            listener.recv(2048)  # not one datagram reached "the host"


def test_dead_loopback_port_fails_fast(tmp_path: Path, proc: SimpleNamespace) -> None:
    from wavry.rift.config import ClientConfig

    port = proc.free_udp_port()

    async def go() -> None:
        await establish("127.0.0.1", port, ClientConfig(), timeout=10, config_dir=tmp_path)

    t0 = time.monotonic()
    with pytest.raises(SessionFailed, match="nothing answers on UDP port"):
        asyncio.run(go())
    took = time.monotonic() - t0
    assert took < 2, f"{took:.1f} s: the ICMP answer came at once, the 10 s timeout would not"
    r, _ = run(tmp_path, "connect", f"127.0.0.1:{port}", "--headless")
    assert r.returncode == 1 and "nothing answers on UDP port" in one_error_line(r.stderr)


def test_no_sdl_warning_on_a_window_import(tmp_path: Path) -> None:
    code = "import wavry.client.window, wavry.client.gamepad"
    env = {k: v for k, v in os.environ.items() if k != "PYSDL2_DLL_PATH"}
    r = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                       text=True, env=env, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "pysdl2-dll" not in r.stderr and "UserWarning" not in r.stderr


def test_pairing_prompt_asks_again_and_takes_the_code_as_shown(
    tmp_path: Path, proc: SimpleNamespace
) -> None:
    with host(tmp_path / "h", "--pair", "--source", "synthetic") as (port, lines):
        shown = wait_line(lines, r"Pairing code: (\d{3} \d{3})").group(1)
        wrong = "000 000" if shown != "000 000" else "111 111"
        asked: list[PairingPrompt] = []

        async def answer(p: PairingPrompt) -> str | None:
            asked.append(p)
            return {1: "12 34", 2: wrong}.get(len(asked), shown)  # bad format, wrong, right

        async def go() -> str:
            from wavry.rift.config import ClientConfig

            prompts = Prompts(pairing_code=answer)
            est = await establish(
                "127.0.0.1", port, ClientConfig(), config_dir=tmp_path / "c", prompts=prompts
            )
            await est.conn.close("done")
            return est.host_id

        assert asyncio.run(go())
    assert len(asked) == 3
    assert asked[0].error == "" and "pairing code" in asked[0].host_message
    assert "6 digits" in asked[1].error  # a typo costs no attempt on the host
    assert asked[2].error == "wrong code; 4 attempts left"  # said once, then asked again


def test_wrong_code_without_a_terminal_is_one_line(tmp_path: Path, proc: SimpleNamespace) -> None:
    with proc.host_process(tmp_path / "h", "--source", "synthetic") as (port, _lines):
        r, _ = run(tmp_path / "c", "connect", f"127.0.0.1:{port}", "--headless",
                   "--pair-code", "000-001")  # fmt: skip
    line = one_error_line(r.stderr)
    assert r.returncode == 1 and ("wrong code" in line or "no pairing code" in line)
    assert r.stderr.count("wrong code") <= 1


def test_host_id_mismatch_says_who_is_who(tmp_path: Path, proc: SimpleNamespace) -> None:
    other = "ID00vVX4zeNHKnLsJOi0wmFP8Bn3HwZwWsgFmzWkTRM"
    with host(tmp_path / "h", *proc.HOST_ARGS) as (port, lines):
        r, _ = run(tmp_path / "c", "connect", f"127.0.0.1:{port}", "--headless",
                   "--host-id", other)  # fmt: skip
        host_id = wait_line(lines, r"Wavry ID: (\S+)").group(1)
    line = one_error_line(r.stderr)
    assert f"presented Wavry ID {host_id}" in line and f"you asked for {other}" in line
    assert "pins forget" not in line


def test_hello_states_what_the_client_wants(tmp_path: Path, proc: SimpleNamespace) -> None:
    from wavry.media.decode import decodable_codecs

    stats = tmp_path / "s.json"
    with proc.host_process(tmp_path / "h", "--trust", "any", "--source", "synthetic",
                           "--size", "1280x720") as (port, _lines):  # fmt: skip
        r, _ = run(tmp_path / "c", "connect", f"127.0.0.1:{port}", "--headless",
                   "--resolution", "640x360", "--fps", "30", "--seconds", "2",
                   "--stats-json", str(stats))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "H264 640x360@30" in r.stderr  # the host honoured max_resolution and max_fps
    assert json.loads(stats.read_text())["frames_presented"] > 20
    assert decodable_codecs()  # and Hello offered exactly these (see ClientRuntime._config)


def test_session_failed_is_expected_failure() -> None:
    assert issubclass(SessionFailed, Exception)


def test_hello_offers_only_decodable_codecs(monkeypatch: pytest.MonkeyPatch) -> None:
    from wavry.client import runtime as client_runtime
    from wavry.client.options import ConnectOptions
    from wavry.media import decode
    from wavry.media.encode import Codec
    from wavry.rift import rift_pb2

    monkeypatch.setattr(decode, "decodable_codecs", lambda: [Codec.H264])
    rt = client_runtime.ClientRuntime(ConnectOptions("127.0.0.1", 1, fps=30))
    cfg = rt._config((1920, 1200))  # what run() puts in Hello
    assert cfg.supported_codecs == [rift_pb2.H264]
    assert (cfg.max_width, cfg.max_height, cfg.max_fps) == (1920, 1200, 30)
    monkeypatch.setattr(decode, "decodable_codecs", lambda: [])
    with pytest.raises(SessionFailed, match="no video decoder"):
        rt._config((0, 0))
