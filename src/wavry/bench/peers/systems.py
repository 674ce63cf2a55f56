"""The remote desktops `wavry bench peers` compares: wavry, VNC and RDP (Selkies and aiortc
have their own modules). Each is started the way a user would, tuned for its lowest latency;
the tuning is in ``tuning()`` and in docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from wavry.bench.peers.procs import Proc, free_tcp_port, wait_tcp
from wavry.bench.peers.stage import NotRunnable, Running, Stage, missing_tools
from wavry.runtime.processes import LISTENING

__all__ = ["RdpSystem", "VncSystem", "WavrySystem", "wait_line"]

_START_TIMEOUT_S = 30.0


class WavrySystem:
    """`wavry host --source x11 --display A` → `wavry connect` (windowed) on display B."""

    name = "wavry"

    def __init__(self, extra_host_args: list[str] | None = None) -> None:
        self.extra_host_args = extra_host_args or []

    def tuning(self, path: str) -> str:
        del path
        return (
            "defaults (H.264 ultrafast/zerolatency, DELTA rate control starting at 8 Mbit/s); "
            "--trust any instead of pairing, --audio off; the client in its normal window"
        )

    def missing(self) -> str | None:
        return None

    def start(self, stage: Stage) -> Running:
        run = Running()
        env_a = dict(stage.display_a.env(), XDG_CONFIG_HOME=str(stage.workdir / "host"))
        env_a["PYTHONUNBUFFERED"] = "1"
        host_argv = [sys.executable, "-m", "wavry", "host", "--source", "x11"]
        host_argv += ["--display", stage.display_a.display, "--fps", str(stage.fps)]
        host_argv += ["--listen", f"{stage.path.server_addr}:0", "--trust", "any"]
        host_argv += ["--audio", "off", *self.extra_host_args]
        host = Proc("wavry-host", stage.path.server_argv(host_argv), env_a, stdout_pipe=True)
        run.servers.append(host)
        bound = wait_line(host, LISTENING)
        if bound is None:
            run.stop()
            raise NotRunnable(f"wavry host did not start: {host.log_tail()}")
        port = int(bound.group(2))
        env_b = dict(stage.display_b.env(), XDG_CONFIG_HOME=str(stage.workdir / "client"))
        connect = [sys.executable, "-m", "wavry", "connect", f"{stage.path.server_addr}:{port}"]
        connect += ["--no-audio", "--timeout-seconds", "20", "--fps", str(stage.fps)]
        stats_file = stage.workdir / "client-stats.json"
        connect += ["--stats-json", str(stats_file)]
        run.viewers.append(Proc("wavry-connect", stage.path.viewer_argv(connect), env_b))
        run.after_stop["client_stats"] = lambda: _client_stages(stats_file)
        run.facts["port"] = port
        return run


def _client_stages(path: Path) -> dict[str, Any] | None:
    """What the client's own accounting says (``--stats-json``, written as it exits): its
    per-stage means over the session, so a glass-to-glass figure can be split."""
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keep = (
        "stages_ms",
        "stages_p50_ms",
        "e2e_after_startup_ms",
        "frames_presented",
        "frames_dropped",
    )
    return {k: stats[k] for k in keep if k in stats} or None


def wait_line(proc: Proc, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """Read ``proc``'s stdout until a line matches (then keep draining it in a thread)."""
    stdout = proc.popen.stdout
    assert stdout is not None
    found: list[re.Match[str]] = []
    ready = threading.Event()

    def drain() -> None:
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us at the end
            for line in stdout:
                if not found:
                    m = pattern.search(line.rstrip())
                    if m:
                        found.append(m)
                        ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    ready.wait(_START_TIMEOUT_S)
    return found[0] if found else None


class VncSystem:
    """x11vnc on display A → TigerVNC's viewer on display B."""

    name = "vnc"

    def tuning(self, path: str) -> str:
        server = (
            "x11vnc -wait 1 -defer 1 -nonap -nowait_bog -sb 0 -xd_area 0 (poll every 1 ms, "
            "send at once, trust every XDamage rectangle, never nap), no clipboard/selection"
        )
        if path == "loopback":
            viewer = "TigerVNC viewer: Raw encoding, AutoSelect off, full colour"
        else:
            viewer = (
                "TigerVNC viewer: AutoSelect (Tight + JPEG, quality and compression chosen from "
                "the measured throughput, as TigerVNC does on slow links)"
            )
        return f"{server}; {viewer}"

    def missing(self) -> str | None:
        return missing_tools(
            ["x11vnc", "xtigervncviewer"], "apt-get install x11vnc tigervnc-viewer"
        )

    def start(self, stage: Stage) -> Running:
        run = Running()
        port = free_tcp_port()
        addr = stage.path.server_addr
        server = ["x11vnc", "-display", stage.display_a.display, "-rfbport", str(port)]
        server += ["-listen", addr, "-nopw", "-forever", "-shared", "-norc", "-quiet"]
        server += ["-wait", "1", "-defer", "1", "-nonap", "-nowait_bog", "-sb", "0"]
        server += ["-xd_area", "0", "-noxrecord", "-nosel", "-noclipboard", "-nosetclipboard"]
        server += ["-noipv6", "-cursor", "none"]
        env_a = dict(stage.display_a.env(), HOME=str(stage.workdir))
        run.servers.append(Proc("x11vnc", stage.path.server_argv(server), env_a))
        if not wait_tcp(addr, port, _START_TIMEOUT_S, stage.path.viewer_ns):
            run.stop()
            raise NotRunnable(
                f"x11vnc did not listen on {addr}:{port}: {run.servers[0].log_tail()}"
            )
        viewer = ["xtigervncviewer", "-SecurityTypes", "None", "-Shared", "-RemoteResize=0"]
        viewer += ["-geometry", "+0+0", "-MenuKey", "", "-AcceptClipboard=0", "-SendClipboard=0"]
        if stage.path.name == "loopback":
            viewer += ["-AutoSelect=0", "-PreferredEncoding", "Raw", "-FullColor", "-NoJPEG"]
        else:
            viewer += ["-AutoSelect=1"]
        viewer.append(f"{addr}::{port}")
        env_b = dict(stage.display_b.env(), HOME=str(stage.workdir))
        run.viewers.append(Proc("vncviewer", stage.path.viewer_argv(viewer), env_b))
        run.facts["port"] = port
        return run


class RdpSystem:
    """FreeRDP's shadow server on display A → xfreerdp (RDP 8 graphics pipeline, H.264) on B."""

    name = "rdp"

    def tuning(self, path: str) -> str:
        del path
        return (
            "freerdp-shadow-cli (no authentication); xfreerdp /gfx:AVC420 (H.264), "
            "/network:lan, no clipboard, window at 0,0 without decorations"
        )

    def missing(self) -> str | None:
        return missing_tools(
            ["freerdp-shadow-cli", "xfreerdp"], "apt-get install freerdp2-shadow-x11 freerdp2-x11"
        )

    def start(self, stage: Stage) -> Running:
        run = Running()
        port = free_tcp_port()
        addr = stage.path.server_addr
        home = stage.workdir / "rdp-home"
        home.mkdir(parents=True, exist_ok=True)
        server = ["freerdp-shadow-cli", f"/port:{port}", f"/bind-address:{addr}", "-auth"]
        env_a = dict(stage.display_a.env(), HOME=str(home))
        run.servers.append(Proc("freerdp-shadow", stage.path.server_argv(server), env_a))
        if not wait_tcp(addr, port, _START_TIMEOUT_S, stage.path.viewer_ns):
            run.stop()
            raise NotRunnable(f"freerdp-shadow-cli did not listen: {run.servers[0].log_tail()}")
        time.sleep(0.2)
        viewer = ["xfreerdp", f"/v:{addr}:{port}", "/cert:ignore", "/u:bench", "/p:bench"]
        viewer += ["/gfx:AVC420", "/network:lan", "-clipboard", "-decorations"]
        viewer += ["/window-position:0x0", f"/size:{stage.width}x{stage.height}"]
        # the graphics channel's debug log names each H.264 (AVC420) metablock it decodes:
        # counted below as proof that the stream really is H.264, not a fallback codec
        viewer += ["-grab-keyboard", "/log-filters:com.freerdp.channels.rdpgfx.client:DEBUG"]
        env_b = dict(stage.display_b.env(), HOME=str(home))
        client = Proc("xfreerdp", stage.path.viewer_argv(viewer), env_b)
        run.viewers.append(client)
        run.facts["port"] = port
        run.probes["avc420_frames_decoded"] = lambda: _count_in_log(client, "H264_METABLOCK")
        return run


def _count_in_log(proc: Proc, needle: str) -> int:
    try:
        with open(proc.log_path, errors="replace") as f:
            return sum(needle in line for line in f)
    except OSError:
        return 0
