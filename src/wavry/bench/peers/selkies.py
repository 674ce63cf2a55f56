"""Selkies in `wavry bench peers`: the `selkies` pip package (x264 through pixelflux, WebSockets)
on display A, its own web client in Chromium on display B.

Selkies is installed into its own virtual environment under the cache directory
(``<cache>/selkies-venv``, pinned to :data:`SELKIES_VERSION`), never into Wavry's dependencies;
`scripts/setup.sh` creates it, and the benchmark creates it on first use when it is missing
(a pip install from PyPI). Chromium runs non-headless so its window can be grabbed; it is the
viewer people use with Selkies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from wavry.bench.peers.procs import Proc, free_tcp_port, wait_tcp
from wavry.bench.peers.stage import NotRunnable, Running, Stage

__all__ = ["SELKIES_VERSION", "SelkiesSystem", "ensure_selkies", "find_chromium"]

SELKIES_VERSION = "2.1.0"
_START_TIMEOUT_S = 40.0


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def selkies_bin(cache_dir: Path) -> Path:
    return cache_dir / "selkies-venv" / "bin" / "selkies"


def ensure_selkies(cache_dir: Path) -> Path:
    """The `selkies` executable in ``<cache_dir>/selkies-venv``, installed when missing."""
    exe = selkies_bin(cache_dir)
    marker = cache_dir / "selkies-venv" / ".wavry-version"
    if exe.exists() and marker.exists() and marker.read_text().strip() == SELKIES_VERSION:
        return exe
    venv = cache_dir / "selkies-venv"
    cache_dir.mkdir(parents=True, exist_ok=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [*pip, "--disable-pip-version-check", f"selkies=={SELKIES_VERSION}"],
    ]
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotRunnable(f"cannot install selkies into {venv}: {exc}") from exc
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise NotRunnable(f"cannot install selkies=={SELKIES_VERSION} into {venv}: {tail}")
    marker.write_text(SELKIES_VERSION + "\n")
    return exe


class SelkiesSystem:
    name = "selkies"

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir

    def tuning(self, path: str) -> str:
        del path
        return (
            f"selkies {SELKIES_VERSION}, WebSockets mode, h264enc (x264) in video streaming "
            "(Turbo) mode, CPU encoding with --cpu-encode-threading, frame rate locked to the "
            "animation's, resolution locked "
            "to the picture, congestion control on, audio off, no side bar; viewer: its web "
            "client in Chromium (WebCodecs), an app window at 0,0 of the picture's size"
        )

    def missing(self) -> str | None:
        if find_chromium() is None:
            return "chromium not installed (apt-get install chromium)"
        return None

    def start(self, stage: Stage) -> Running:
        exe = ensure_selkies(stage.cache_dir)
        chromium = find_chromium()
        assert chromium is not None
        run = Running()
        port = free_tcp_port()
        addr = stage.path.server_addr
        w, h, fps = stage.width, stage.height, stage.fps
        server = [str(exe), "--addr", addr, "--port", str(port), "--mode", "websockets"]
        server += ["--enable-basic-auth=false", "--enable-https=false"]
        server += ["--encoder", "h264enc", "--video-streaming-mode=true", "--use-cpu=true"]
        # x264 slices on several threads, as wavry does (pixelflux decides how many: the JSON
        # has what it chose, `facts.encoder`)
        server += ["--cpu-encode-threading=true"]
        server += ["--framerate", f"{fps}-{fps}", "--congestion-control=true"]
        server += ["--manual-width", str(w), "--manual-height", str(h), "--enable-resize=false"]
        server += ["--audio-enabled=false", "--microphone-enabled=false"]
        server += ["--gamepad-enabled=false", "--webcam-enabled=false"]
        server += ["--ui-show-sidebar=false", "--ui-show-connection-indicator=false"]
        server += ["--enable-cursors=false", "--video-on-start=true"]
        home = stage.workdir / "selkies-home"
        home.mkdir(parents=True, exist_ok=True)
        env_a = dict(stage.display_a.env(), HOME=str(home))
        selkies = Proc("selkies", stage.path.server_argv(server), env_a)
        run.servers.append(selkies)
        # what the server says it really streams (encoder, rate control, threads)
        run.probes["stream_settings"] = lambda: _line_with(selkies, "Stream settings active")
        run.probes["encoder"] = lambda: _line_with(selkies, "Encoder: software")
        if not wait_tcp(addr, port, _START_TIMEOUT_S, stage.path.viewer_ns):
            run.stop()
            raise NotRunnable(
                f"selkies did not listen on {addr}:{port}: {run.servers[0].log_tail()}"
            )
        profile = stage.workdir / "chromium-profile"
        viewer = [
            chromium,
            "--no-sandbox",
            "--test-type",
            f"--user-data-dir={profile}",
            "--no-first-run",
        ]
        viewer += ["--no-default-browser-check", "--disable-translate", "--disable-sync"]
        viewer += ["--autoplay-policy=no-user-gesture-required", "--force-device-scale-factor=1"]
        viewer += ["--disable-background-timer-throttling", "--disable-renderer-backgrounding"]
        viewer += ["--window-position=0,0", f"--window-size={w},{h}", "--password-store=basic"]
        # WebCodecs exists only in secure contexts: http://127.0.0.1 is one, the bottleneck's
        # http://10.x address is not (a user would put Selkies behind HTTPS there)
        origin = f"http://{addr}:{port}"
        viewer += [f"--unsafely-treat-insecure-origin-as-secure={origin}", f"--app={origin}/"]
        env_b = dict(stage.display_b.env(), HOME=str(home))
        run.viewers.append(Proc("chromium", stage.path.viewer_argv(viewer), env_b))
        run.facts.update(port=port, selkies=SELKIES_VERSION, flags=json.dumps(server[1:]))
        return run


def _line_with(proc: Proc, needle: str) -> str | None:
    """The last line of ``proc``'s log containing ``needle``, without its log prefix."""
    try:
        with open(proc.log_path, errors="replace") as f:
            lines = [line.strip() for line in f if needle in line]
    except OSError:
        return None
    return lines[-1][lines[-1].index(needle) :] if lines else None
