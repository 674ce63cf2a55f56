"""File transfer end to end: real `wavry host` and `wavry connect` processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace


def test_send_file_client_to_host_byte_identical_while_video_flows(
    tmp_path: Path, proc: SimpleNamespace
) -> None:
    src = tmp_path / "random.bin"
    src.write_bytes(os.urandom(3 * 1000 * 1000))
    out_dir = tmp_path / "D"
    stats = tmp_path / "stats.json"
    with proc.host_process(tmp_path / "h", *proc.HOST_ARGS, "--file-out-dir", str(out_dir)) as (
        port,
        lines,
    ):
        t0 = time.monotonic()
        r = subprocess.run(
            [*proc.WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--send-file", str(src),
             "--stats-json", str(stats), "--file-out-dir", str(tmp_path / "C")],
            env=proc.env_for(tmp_path / "c"), capture_output=True, text=True, timeout=25,
        )  # fmt: skip
        elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "sent random.bin: 100 %, host saved as random.bin" in r.stderr
    assert "sending random.bin:" in r.stderr  # progress
    assert (out_dir / "random.bin").read_bytes() == src.read_bytes()
    assert not list(out_dir.glob("*.part"))
    assert "received random.bin" in "".join(lines)
    data = json.loads(stats.read_text())
    # video kept flowing during the whole transfer (30 fps source)
    assert data["frames_presented"] >= 0.5 * 30 * (elapsed - 2), (data, elapsed)


def test_host_send_file_lands_in_client_out_dir(tmp_path: Path, proc: SimpleNamespace) -> None:
    src = tmp_path / "from-host.txt"
    src.write_bytes(os.urandom(200_000))
    with proc.host_process(tmp_path / "h", *proc.HOST_ARGS, "--send-file", str(src)) as (
        port,
        lines,
    ):
        r = subprocess.run(
            [*proc.WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--seconds", "4",
             "--file-out-dir", str(tmp_path / "C")],
            env=proc.env_for(tmp_path / "c"), capture_output=True, text=True, timeout=25,
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "received from-host.txt" in r.stderr
    assert (tmp_path / "C" / "from-host.txt").read_bytes() == src.read_bytes()
    assert "sent from-host.txt: saved as from-host.txt" in "".join(lines)
