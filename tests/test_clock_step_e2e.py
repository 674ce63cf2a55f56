"""Wall-clock steps of ±60 s in real `wavry host` and `wavry connect` processes: a small
LD_PRELOAD shim (compiled here with gcc) adds an offset, read from a file the test rewrites, to
CLOCK_REALTIME of one process while it runs; CLOCK_MONOTONIC stays real, as in an NTP step.
(We cannot step this shared machine's clock, and libfaketime 0.9.10 breaks Python's sleep when
it leaves the monotonic clock alone.)

Issue 21's cases: host -60 s must not freeze video or refuse handshakes; host +60 s must not
free sessions; client -60 s (and back) must not go silent. The core runs on the monotonic clock
(tests/net/test_clock_step.py steps injected clocks in one process); this checks that nothing
in the runtimes around it still depends on the wall clock, with the real processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static int (*real_clock_gettime)(clockid_t, struct timespec *);
static long long offset_ns, read_at_ns = -1;
static long long now_ns(clockid_t id) {
    struct timespec t;
    real_clock_gettime(id, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
static void refresh(void) {  /* the offset file, re-read at most every 20 ms */
    long long mono = now_ns(CLOCK_MONOTONIC);
    if (read_at_ns >= 0 && mono - read_at_ns < 20000000LL) return;
    read_at_ns = mono;
    const char *path = getenv("WAVRY_TEST_CLOCK_OFFSET_FILE");
    FILE *f = path ? fopen(path, "r") : NULL;
    double seconds = 0;
    if (f) { if (fscanf(f, "%lf", &seconds) != 1) seconds = 0; fclose(f); }
    offset_ns = (long long)(seconds * 1e9);
}
int clock_gettime(clockid_t id, struct timespec *ts) {
    if (!real_clock_gettime) real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    int r = real_clock_gettime(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        refresh();
        long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns;
        ts->tv_sec = t / 1000000000LL;
        ts->tv_nsec = t % 1000000000LL;
    }
    return r;
}
"""
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the clock shim"),
]
WAVRY = [sys.executable, "-m", "wavry"]
FPS = 30
SECONDS = 13


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clockshim")
    (d / "shim.c").write_text(SHIM)
    lib = d / "libwavryclockstep.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(d / "shim.c"), "-ldl"], check=True
    )
    return lib


def _stepped_env(home: Path, offset_file: Path, lib: Path) -> dict[str, str]:
    offset_file.write_text("0\n")
    return dict(
        os.environ,
        XDG_CONFIG_HOME=str(home),
        PYTHONUNBUFFERED="1",
        LD_PRELOAD=str(lib),
        WAVRY_TEST_CLOCK_OFFSET_FILE=str(offset_file),
    )


class Lines:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, []  # type: ignore[var-annotated]
        self.t0 = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.t0, line.rstrip()))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            time.sleep(0.05)
        return None


def _run(tmp: Path, step_host: bool, lib: Path) -> tuple[Lines, Lines, list[int], Path]:
    offsets = tmp / "offset"
    host_env = _stepped_env(tmp / "h", offsets, lib) if step_host else dict(
        os.environ, XDG_CONFIG_HOME=str(tmp / "h"), PYTHONUNBUFFERED="1")  # fmt: skip
    client_env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "c"), PYTHONUNBUFFERED="1")
    if not step_host:
        client_env = _stepped_env(tmp / "c", offsets, lib)
    host = Lines(subprocess.Popen(
        [*WAVRY, "host", "--listen", "127.0.0.1:0", "--trust", "any", "--source", "synthetic",
         "--size", "320x240", "--fps", str(FPS)],
        env=host_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))  # fmt: skip
    pings: list[int] = []
    try:
        m = host.wait_for(r"listening on udp://127\.0\.0\.1:(\d+)", 30)
        assert m, host.lines
        port = m.group(1)
        stats = tmp / "stats.json"
        args = [*WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--seconds", str(SECONDS),
                "--stats-json", str(stats)]  # fmt: skip
        client = Lines(
            subprocess.Popen(
                args, env=client_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
        assert client.wait_for(r"^connected to", 20), client.lines
        time.sleep(3)
        offsets.write_text("-60\n")  # the wall clock steps back a minute
        time.sleep(3)
        if step_host:  # a new client's handshake while the host's clock is a minute behind
            pings.append(subprocess.run(
                [*WAVRY, "ping", f"127.0.0.1:{port}", "--count", "3"],
                env=dict(os.environ, XDG_CONFIG_HOME=str(tmp / "p1")), capture_output=True,
                timeout=30).returncode)  # fmt: skip
        offsets.write_text("60\n")  # ... and a minute ahead
        time.sleep(3)
        if step_host:
            pings.append(subprocess.run(
                [*WAVRY, "ping", f"127.0.0.1:{port}", "--count", "3"],
                env=dict(os.environ, XDG_CONFIG_HOME=str(tmp / "p2")), capture_output=True,
                timeout=30).returncode)  # fmt: skip
        client.proc.wait(30)
    finally:
        host.proc.terminate()
        host.proc.wait(10)
    return host, client, pings, stats


def _check(host: Lines, client: Lines, stats: Path, fps_lines_valid: bool) -> None:
    text = "\n".join(line for _, line in client.lines)
    assert client.proc.returncode == 0, text
    assert not re.search(r"stalled|reconnecting|lost", text), text  # never silent
    host_text = "\n".join(line for _, line in host.lines)
    assert not re.search(r"stalled|ended: timeout", host_text), host_text  # never freed
    frames = json.loads(stats.read_text())["frames_presented"]
    assert frames >= 0.75 * FPS * SECONDS, (frames, text)
    if fps_lines_valid:  # the client's per-second figure (its clock was not stepped)
        fps = [
            int(m.group(1)) for _, ln in client.lines if (m := re.search(r"(\d+) fps shown", ln))
        ]
        assert len(fps) >= 10 and min(fps[1:]) >= FPS // 3, fps  # video never froze


def test_host_wall_clock_steps_back_and_forth(tmp_path: Path, shim: Path) -> None:
    host, client, pings, stats = _run(tmp_path, step_host=True, lib=shim)
    _check(host, client, stats, fps_lines_valid=True)
    assert pings == [0, 0], host.lines  # handshakes were not refused after either step


def test_client_wall_clock_steps_back_and_forth(tmp_path: Path, shim: Path) -> None:
    # (the client's per-second fps line counts frames by wall-clock time: it shows nonsense
    # for a second or two after its own clock steps; the session itself is what is checked)
    host, client, _, stats = _run(tmp_path, step_host=False, lib=shim)
    _check(host, client, stats, fps_lines_valid=False)
