"""``wavry bench gateway``: signaling sockets held, signaling round trip across two instances
through Redis, and event-loop lag of an instance while a login flood runs against it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from wavry.bench.report import machine_facts, print_table
from wavry.rift.identity import Identity

__all__ = ["bench_gateway_command", "run_gateway_bench"]

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
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


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
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def rss_mib(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


def _gateway(data: Path, db: str, redis: str) -> tuple[_Proc, str]:
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
    proc = _Proc(cmd, {**os.environ, **_ENV, "PYTHONUNBUFFERED": "1"}, "listening on")
    return proc, f"127.0.0.1:{port}"


def _lag_buckets(text: str) -> dict[float, float]:
    out = {}
    for m in re.finditer(
        r'wavry_gateway_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', text
    ):
        out[float(m.group(1))] = float(m.group(2))
    return out


def _lag_p99(before: dict[float, float], after: dict[float, float]) -> float:
    """Upper bucket bound holding 99 % of the samples taken between two scrapes."""
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    if total <= 0:
        return float("nan")
    for le in sorted(after):
        if after[le] - before.get(le, 0) >= 0.99 * total:
            return le
    return float("inf")


async def _bench(sockets: int, messages: int, logins: int, db: str, redis: str) -> dict[str, Any]:
    import httpx
    from websockets.asyncio.client import connect

    data = Path(tempfile.mkdtemp(prefix="wavry-gw-bench-"))
    procs: list[_Proc] = []
    try:
        a, a_addr = _gateway(data, db, redis)
        procs.append(a)
        b, b_addr = _gateway(data, db, redis)
        procs.append(b)
        http = httpx.AsyncClient(base_url=f"http://{a_addr}", timeout=60)
        name = "bench" + uuid.uuid4().hex[:8]
        r = await http.post(
            "/v1/auth/register",
            json={
                "email": f"{name}@example.com",
                "username": name,
                "password": "bench password",
                "display_name": name,
            },
        )
        r.raise_for_status()
        token, uid = r.json()["token"], r.json()["user"]["id"]
        hdr = {"Authorization": f"Bearer {token}"}
        sem = asyncio.Semaphore(32)

        async def device(kind: str) -> Identity:
            ident = Identity.generate()
            proof = base64.urlsafe_b64encode(ident.sign(b"wavry-device:" + uid.encode()))
            async with sem:
                resp = await http.post(
                    "/v1/devices",
                    headers=hdr,
                    json={
                        "wavry_id": ident.wavry_id,
                        "name": "b",
                        "kind": kind,
                        "proof": proof.decode(),
                    },
                )
            resp.raise_for_status()
            return ident

        async def peer(addr: str, ident: Identity, role: str) -> Any:
            ws = await connect(f"ws://{addr}/v1/signal", open_timeout=60, ping_interval=None)
            await ws.send(
                json.dumps(
                    {"type": "auth", "token": token, "wavry_id": ident.wavry_id, "role": role}
                )
            )
            msg = json.loads(await ws.recv())
            assert msg["type"] == "ready", msg
            return ws

        # 1. sockets held, spread over both instances
        t0 = time.perf_counter()
        idents = await asyncio.gather(*(device("client") for _ in range(sockets)))
        t_reg = time.perf_counter() - t0
        held: list[Any] = []
        t0 = time.perf_counter()
        for i in range(0, sockets, 100):
            chunk = idents[i : i + 100]
            held += await asyncio.gather(
                *(
                    peer(a_addr if (i + j) % 2 == 0 else b_addr, x, "client")
                    for j, x in enumerate(chunk)
                )
            )
        t_open = time.perf_counter() - t0
        await asyncio.sleep(2)
        alive = sum(1 for ws in held if ws.state.name == "OPEN")
        rss = (a.rss_mib(), b.rss_mib())

        # 2. round trip client@A -> host@B -> client@A
        host_id, client_id = await device("host"), await device("client")
        h = await peer(b_addr, host_id, "host")
        c = await peer(a_addr, client_id, "client")
        sid = str(uuid.uuid4())
        await c.send(
            json.dumps(
                {"type": "connect", "session": sid, "host": host_id.wavry_id, "candidates": []}
            )
        )
        json.loads(await h.recv())

        async def echo() -> None:
            async for raw in h:
                msg = json.loads(raw)
                await h.send(
                    json.dumps({"type": "candidate", "session": sid, "candidate": msg["candidate"]})
                )

        echo_task = asyncio.get_running_loop().create_task(echo())

        async def rtts(n: int) -> list[float]:
            out = []
            for i in range(n):
                t = time.perf_counter()
                await c.send(
                    json.dumps(
                        {
                            "type": "candidate",
                            "session": sid,
                            "candidate": {"kind": "host", "addr": f"10.0.0.1:{i}"},
                        }
                    )
                )
                json.loads(await c.recv())
                out.append((time.perf_counter() - t) * 1000)
            return out

        quiet = await rtts(messages)

        # 3. login flood against A while measuring round trips and A's loop lag
        before = _lag_buckets((await http.get("/metrics")).text)
        ok = 0

        async def login() -> None:
            nonlocal ok
            async with sem:
                resp = await http.post(
                    "/v1/auth/login", json={"login": name, "password": "bench password"}
                )
            ok += resp.status_code == 200

        t0 = time.perf_counter()
        flood = asyncio.gather(*(login() for _ in range(logins)))
        loaded: list[float] = []
        while not flood.done():
            loaded += await rtts(20)
        await flood
        t_flood = time.perf_counter() - t0
        after = _lag_buckets((await http.get("/metrics")).text)
        echo_task.cancel()
        for ws in [*held, h, c]:
            with contextlib.suppress(Exception):
                await ws.close()
        await http.aclose()
        return {
            "sockets": {
                "requested": sockets,
                "alive_after_2s": alive,
                "register_s": round(t_reg, 2),
                "open_s": round(t_open, 2),
                "rss_mib": [round(x, 1) for x in rss],
            },
            "rtt_ms": {"n": len(quiet), "p50": _pct(quiet, 0.5), "p99": _pct(quiet, 0.99)},
            "flood": {
                "logins": logins,
                "ok": ok,
                "seconds": round(t_flood, 2),
                "logins_per_s": round(logins / t_flood, 1),
                "rtt_n": len(loaded),
                "rtt_p50_ms": _pct(loaded, 0.5),
                "rtt_p99_ms": _pct(loaded, 0.99),
                "loop_lag_p99_le_s": _lag_p99(before, after),
            },
        }
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(data, ignore_errors=True)


def run_gateway_bench(
    sockets: int = 1000,
    messages: int = 500,
    logins: int = 100,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    redis_proc: _Proc | None = None
    tmp = Path(tempfile.mkdtemp(prefix="wavry-gw-bench-db-"))
    try:
        if not redis_url:
            server = shutil.which("redis-server")
            if server is None:
                raise RuntimeError("give --redis-url (no redis-server to start a private one)")
            port = _free_port()
            redis_proc = _Proc(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp),
                ],
                dict(os.environ),
                "Ready to accept connections",
            )
            redis_url = f"redis://127.0.0.1:{port}/0"
        db = database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        results = asyncio.run(_bench(sockets, messages, logins, db, redis_url))
        results["database"] = db.split("://")[0]
        return {"machine": machine_facts(), "results": results}
    finally:
        if redis_proc is not None:
            redis_proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_gateway_command(
    sockets: Annotated[
        int, typer.Option(help="Signaling sockets to hold (both instances).")
    ] = 1000,
    messages: Annotated[int, typer.Option(help="Round trips measured at rest.")] = 500,
    logins: Annotated[int, typer.Option(help="Logins in the flood.")] = 100,
    database_url: Annotated[
        str | None, typer.Option(help="Shared database (default: a temporary SQLite file).")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis (default: a private redis-server).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Two gateway instances + Redis: sockets held, round trip, loop lag under a login flood."""
    try:
        report = run_gateway_bench(sockets, messages, logins, database_url, redis_url)
    except RuntimeError as exc:
        typer.echo(f"wavry bench gateway: error: {exc}", err=True)
        raise typer.Exit(1) from None
    r = report["results"]
    s, rt, f = r["sockets"], r["rtt_ms"], r["flood"]
    print_table(
        f"gateway bench (2 instances, {r['database']}, Redis pub/sub)",
        ["measure", "value"],
        [
            ["signaling sockets held", f"{s['alive_after_2s']}/{s['requested']}"],
            ["  time to open + auth", f"{s['open_s']} s"],
            ["  RSS per instance", " / ".join(f"{x} MiB" for x in s["rss_mib"])],
            ["round trip A→B→A p50/p99", f"{rt['p50']:.2f} / {rt['p99']:.2f} ms (n={rt['n']})"],
            ["login flood", f"{f['ok']}/{f['logins']} ok, {f['logins_per_s']} logins/s"],
            ["  round trip p50/p99", f"{f['rtt_p50_ms']:.2f} / {f['rtt_p99_ms']:.2f} ms"],
            ["  event-loop lag p99 ≤", f"{f['loop_lag_p99_le_s'] * 1000:g} ms"],
        ],
    )
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_out}")
