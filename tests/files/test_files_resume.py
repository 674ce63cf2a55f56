"""An interrupted transfer resumes after the client reconnects (real processes, a UDP proxy
that is frozen for longer than the session timeout)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace


def test_transfer_resumes_after_interruption(tmp_path: Path, proc: SimpleNamespace) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2_000_000))
    out_dir = tmp_path / "D"
    with proc.host_process(tmp_path / "h", *proc.HOST_ARGS, "--file-out-dir", str(out_dir)) as (
        port,
        lines,
    ):
        pport = proc.free_udp_port()
        proxy = subprocess.Popen(
            [*proc.WAVRY, "lab", "proxy", "--upstream", f"127.0.0.1:{port}",
             "--listen", f"127.0.0.1:{pport}", "--interval-seconds", "60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client = subprocess.Popen(
                [*proc.WAVRY, "connect", f"127.0.0.1:{pport}", "--headless",
                 "--send-file", str(src), "--no-file-spare"],
                env=proc.env_for(tmp_path / "c"), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            err: list[str] = []

            def read() -> None:
                assert client.stderr is not None
                err.extend(client.stderr)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            # interrupt once part of the file is through: the client offered it and sends
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any("sending big.bin" in x for x in err):
                time.sleep(0.05)
            proxy.send_signal(signal.SIGSTOP)
            time.sleep(11.0)  # longer than the 10 s session timeout: a new session
            proxy.send_signal(signal.SIGCONT)
            client.wait(timeout=60)
            reader.join(5)
            r = subprocess.CompletedProcess(client.args, client.returncode, "", "".join(err))
        finally:
            proxy.send_signal(signal.SIGCONT)
            proxy.terminate()
            proxy.wait(5)
    log = "".join(lines)
    assert r.returncode == 0, r.stderr + log
    assert "reconnected" in r.stderr
    m = re.search(r"resuming big\.bin from chunk (\d+) of (\d+)", log)
    assert m and 0 < int(m.group(1)) < int(m.group(2)), log
    assert [p.name for p in out_dir.iterdir()] == ["big.bin"]
    assert (out_dir / "big.bin").read_bytes() == src.read_bytes()
