"""`wavry demo`: a real host process streaming to a client on loopback, with live statistics.

The host runs as a separate `wavry host` process with its own configuration directory, on a
private virtual display with something moving on it when Xvfb is available (else the synthetic
test pattern). The client is paired with it beforehand (its Wavry ID is written to the host's
trusted devices), so the demo exercises the normal trust path, not the open lab mode. The client
opens a window when a display exists, else runs headless; it prints live stats every second and
a per-stage latency table at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wavry.net.loop import loop_name
from wavry.runtime.processes import WAVRY, parse_banner, wavry_env
from wavry.runtime.session import SessionFailed
from wavry.store import TrustedDevices, load_or_create_identity


class DemoFailed(Exception):
    pass


async def _start_host(home: Path, source_args: list[str]) -> tuple[asyncio.subprocess.Process, int]:
    env = wavry_env(home / "host")
    proc = await asyncio.create_subprocess_exec(
        *WAVRY,
        "host",
        "--listen",
        "127.0.0.1:0",
        "--name",
        "demo-host",
        *source_args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
        except TimeoutError:
            break
        if not line:
            break
        text = line.decode(errors="replace").rstrip()
        print(f"  [host] {text}", flush=True)
        bound = parse_banner(text)
        if bound is not None:
            return proc, bound[1]
    proc.kill()
    raise DemoFailed("the host process did not start (see its output above)")


async def _echo_host(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        print(f"  [host] {line.decode(errors='replace').rstrip()}", flush=True)


def _source_args() -> list[str]:
    """A virtual display with a moving picture when possible, else the synthetic pattern."""
    if importlib.util.find_spec("wavry.media.virtual") is None or shutil.which("Xvfb") is None:
        return ["--source", "synthetic", "--size", "1280x720"]
    return ["--virtual", "--size", "1280x720", "--run", DEMO_APP]


# Something that moves on the virtual display: a small SDL animation (wavry/runtime/demo_app.py).
DEMO_APP = f"{sys.executable} -m wavry.runtime.demo_app"


async def run_demo(seconds: float) -> int:
    from wavry.runtime.connect import ConnectOptions, run_connect

    with tempfile.TemporaryDirectory(prefix="wavry-demo-") as tmp:
        home = Path(tmp)
        client_dir = home / "client" / "wavry"
        client_identity = load_or_create_identity(client_dir)
        TrustedDevices(home / "host" / "wavry").add(client_identity.wavry_id, "demo-client")
        print(f"wavry demo: host process + client on loopback ({loop_name()} event loop)")
        proc, port = await _start_host(home, _source_args())
        echo = asyncio.create_task(_echo_host(proc))
        display = os.environ.get("DISPLAY")
        headless = not display
        print(f"client: {'window on ' + display if display else 'headless (no DISPLAY)'}")
        opts = ConnectOptions(
            host="127.0.0.1",
            port=port,
            headless=headless,
            seconds=seconds,
            live_stats=True,
            config_dir=client_dir,
        )
        try:
            result = await run_connect(opts)
            summary, ended = result.summary, result.ended
        except SessionFailed as exc:
            raise DemoFailed(str(exc)) from exc
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
            with contextlib.suppress(asyncio.CancelledError):
                await echo
    _print_summary(summary)
    if ended:
        raise DemoFailed(f"session ended early: {ended}")
    if not summary["frames_presented"]:
        raise DemoFailed("no frame was presented")
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    from wavry.client.live import startup_line, totals_line
    from wavry.client.stats import STAGES

    stages = summary["stages_ms"]
    print()
    print("per-stage latency (mean ms per shown frame)")
    for name in (*STAGES, "present"):
        print(f"  {name:<10} {stages[name]:8.2f}")
    print(f"  {startup_line(summary['startup'])}")
    print(f"  {totals_line(summary)}")
    lat = summary["e2e_latency_ms"]
    print(f"  end-to-end p99 {lat['p99']} ms (whole session); drops: {summary['drops'] or 'none'}")
    print(
        f"  {summary['bitrate_kbps']} kbit/s, loss {summary['loss_pct']} %, "
        f"FEC recovered {summary['fec_recovered']}, rtt {summary['rtt_ms']} ms, "
        f"presenter {summary.get('presenter', '-')}"
    )
