"""Parts of ``wavry bench gateway``: gateway processes, their metrics, and the signaling
flooder that runs in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from wavry.percentile import percentile

_ENV = {
    "WAVRY_GATEWAY_RATE_PER_IP": "1000000",
    "WAVRY_GATEWAY_RATE_BURST": "1000000",
    "WAVRY_GATEWAY_AUTH_RATE_PER_IP": "1000000",
    "WAVRY_GATEWAY_AUTH_RATE_BURST": "1000000",
    "WAVRY_GATEWAY_LOCKOUT_FAILURES": "1000000000",
    "WAVRY_GATEWAY_WS_PER_IP": "1000000",
    "WAVRY_GATEWAY_WS_MSG_RATE": "1000000",
    "WAVRY_GATEWAY_WS_MSG_BURST": "1000000",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    p = percentile(values, q)
    return float("nan") if p is None else p


class _Proc:
    def __init__(self, cmd: list[str], env: dict[str, str], ready: str) -> None:
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        self.line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{cmd[0]} exited early")
            if ready in line:
                self.line = line
                return
        raise RuntimeError(f"{cmd[0]} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)  # thousands of sockets to close
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def rss_mib(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


def _gateway(
    data: Path, db: str, redis: str, extra: dict[str, str] | None = None
) -> tuple[_Proc, str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "wavry.gateway",
        "--listen",
        f"127.0.0.1:{port}",
        "--stun-listen",
        "127.0.0.1:0",
        "--data-dir",
        str(data),
        "--database-url",
        db,
        "--redis-url",
        redis,
        "--log-level",
        "warning",
    ]
    env = {**os.environ, **_ENV, **(extra or {}), "PYTHONUNBUFFERED": "1"}
    proc = _Proc(cmd, env, "listening on")
    return proc, f"127.0.0.1:{port}"


def _lag_buckets(text: str) -> dict[float, float]:
    out = {}
    for m in re.finditer(
        r'wavry_gateway_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', text
    ):
        out[float(m.group(1))] = float(m.group(2))
    return out


def _lag_p99(before: dict[float, float], after: dict[float, float], q: float = 0.99) -> float:
    """Upper bucket bound holding ``q`` of the samples taken between two scrapes."""
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    if total <= 0:
        return float("nan")
    for le in sorted(after):
        if after[le] - before.get(le, 0) >= q * total:
            return le
    return float("inf")


def _share_le(before: dict[float, float], after: dict[float, float], le: float) -> float:
    """Fraction of the samples between two scrapes in buckets up to ``le``."""
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    if total <= 0 or le not in after:
        return float("nan")
    return (after[le] - before.get(le, 0)) / total


def _raise_fd_limit() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard)
            )
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


# The login flood runs against each of these, one after the other, in the same run:
# the old way (Argon2 threads at the loop's priority) is the baseline.
FLOOD_VARIANTS = {
    "threads": {"WAVRY_GATEWAY_ARGON2_EXECUTOR": "thread", "WAVRY_GATEWAY_ARGON2_NICE": "0"},
    "niced_processes": {},  # the defaults: worker processes at niceness 10
}


def _signal_flood_main(
    addr: str, token: str, devices: list[str], conn: Any, rate: float = 0.0
) -> None:
    """Child process: one socket per device, each sending junk until told to stop — as fast as
    the gateway takes it, or ``rate`` messages/s in all; answers the number sent."""
    from websockets.asyncio.client import connect

    async def main() -> int:
        socks = []
        for wid in devices:
            ws = await connect(f"ws://{addr}/v1/signal", ping_interval=None, max_queue=None)
            await ws.send(json.dumps({"type": "auth", "token": token, "wavry_id": wid,
                                      "role": "client"}))  # fmt: skip
            assert json.loads(await ws.recv())["type"] == "ready"
            socks.append(ws)
        junk = json.dumps({"type": "relay_request", "session": str(uuid.uuid4())})
        sent = [0]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), stop.set)

        async def spam(ws: Any) -> None:
            async def drain() -> None:
                with contextlib.suppress(Exception):
                    async for _ in ws:
                        pass

            reader = loop.create_task(drain())
            with contextlib.suppress(Exception):
                interval = len(socks) / rate if rate > 0 else 0.0
                due = loop.time()
                while not stop.is_set():
                    await ws.send(junk)
                    sent[0] += 1
                    if interval:
                        due += interval
                        await asyncio.sleep(max(0.0, due - loop.time()))
                    elif sent[0] % 16 == 0:
                        await asyncio.sleep(0)
            reader.cancel()

        conn.send("ready")
        await asyncio.gather(*(spam(ws) for ws in socks), return_exceptions=True)
        loop.remove_reader(conn.fileno())
        with contextlib.suppress(EOFError):
            conn.recv()  # the "stop"
        conn.send(sent[0])  # before closing: closing many sockets can take a while
        for ws in socks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        return sent[0]

    asyncio.run(main())
