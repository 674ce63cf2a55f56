"""``wavry bench gateway``: signaling sockets held, signaling round trip across two instances
through Redis, and event-loop lag of an instance while a login flood runs against it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from wavry.bench.gateway_parties import (
    FLOOD_VARIANTS,
    _free_port,
    _gateway,
    _lag_buckets,
    _lag_p99,
    _pct,
    _Proc,
    _raise_fd_limit,
    _share_le,
    _signal_flood_main,
)
from wavry.bench.report import machine_facts, print_table
from wavry.rift.identity import Identity

__all__ = ["bench_gateway_command", "run_gateway_bench"]


async def _bench(
    sockets: int,
    messages: int,
    logins: int,
    db: str,
    redis: str,
    sample: int,
    flooders: int,
    flood_rate: float,
) -> dict[str, Any]:
    import httpx
    from websockets.asyncio.client import connect

    fd_limit = _raise_fd_limit()
    need = sockets + 200
    if fd_limit < need:
        raise RuntimeError(f"{sockets} sockets need {need} open files; the limit is {fd_limit}")
    data = Path(tempfile.mkdtemp(prefix="wavry-gw-bench-"))
    procs: list[_Proc] = []
    held: list[Any] = []
    try:
        a, a_addr = _gateway(data, db, redis)
        procs.append(a)
        b, b_addr = _gateway(data, db, redis)
        procs.append(b)
        # the baseline instance for the login flood: Argon2 the old way
        t, t_addr = _gateway(data, db, redis, FLOOD_VARIANTS["threads"])
        procs.append(t)
        http = httpx.AsyncClient(
            base_url=f"http://{a_addr}",
            timeout=120,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
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
            ws = await connect(
                f"ws://{addr}/v1/signal", open_timeout=120, ping_interval=None, max_queue=4
            )
            await ws.send(
                json.dumps(
                    {"type": "auth", "token": token, "wavry_id": ident.wavry_id, "role": role}
                )
            )
            msg = json.loads(await ws.recv())
            assert msg["type"] == "ready", msg
            return ws

        # 1. sockets held, spread over both instances
        rss0 = (a.rss_mib(), b.rss_mib())
        t0 = time.perf_counter()
        idents = await asyncio.gather(*(device("client") for _ in range(sockets)))
        t_reg = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, sockets, 200):
            chunk = idents[i : i + 200]
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
        per_socket_kib = [
            round((rss[k] - rss0[k]) * 1024 / max(1, (sockets + 1 - k) // 2), 1) for k in (0, 1)
        ]

        # 2. round trips: client@X -> host@B -> client@X (the host answers in a task)
        host_id = await device("host")
        h = await peer(b_addr, host_id, "host")

        async def answer() -> None:
            async for raw in h:
                msg = json.loads(raw)
                if msg["type"] == "connect":
                    out = {"type": "accept", "session": msg["session"], "candidates": []}
                elif msg["type"] == "candidate":
                    out = {
                        "type": "candidate",
                        "session": msg["session"],
                        "candidate": msg["candidate"],
                    }
                else:
                    continue
                await h.send(json.dumps(out))

        answer_task = asyncio.get_running_loop().create_task(answer())

        async def open_session(ws: Any) -> tuple[str, float]:
            sid = str(uuid.uuid4())
            t = time.perf_counter()
            await ws.send(
                json.dumps(
                    {"type": "connect", "session": sid, "host": host_id.wavry_id, "candidates": []}
                )
            )
            msg = json.loads(await ws.recv())
            assert msg["type"] == "accept", msg
            return sid, (time.perf_counter() - t) * 1000

        async def rtts(ws: Any, sid: str, n: int) -> list[float]:
            out = []
            for i in range(n):
                t = time.perf_counter()
                await ws.send(
                    json.dumps(
                        {
                            "type": "candidate",
                            "session": sid,
                            "candidate": {"kind": "host", "addr": f"10.0.0.1:{i}"},
                        }
                    )
                )
                json.loads(await ws.recv())
                out.append((time.perf_counter() - t) * 1000)
            return out

        # 2a. connect -> accept from a sample of the held sockets (half on A, half on B)
        step = max(1, len(held) // max(1, sample))
        sampled = held[::step][:sample]
        connect_ms = []
        for ws in sampled:
            connect_ms.append((await open_session(ws))[1])
        # 2b. candidate echo A -> B -> A, at rest
        c = await peer(a_addr, await device("client"), "client")
        sid, _ = await open_session(c)
        quiet = await rtts(c, sid, messages)

        # 3. login flood against one instance while measuring round trips through it and its
        #    event-loop lag; first the old way (threads, baseline), then the default
        floods: dict[str, Any] = {}
        for variant, (addr, via_ws, via_sid) in (
            ("threads", (t_addr, None, None)),
            ("niced_processes", (a_addr, c, sid)),
        ):
            if via_ws is None or via_sid is None:
                via_ws = await peer(addr, await device("client"), "client")
                via_sid, _ = await open_session(via_ws)
            target = httpx.AsyncClient(base_url=f"http://{addr}", timeout=120)
            before = _lag_buckets((await target.get("/metrics")).text)
            codes: Counter[int] = Counter()

            async def login(target: httpx.AsyncClient, codes: Counter[int]) -> None:
                async with sem:
                    resp = await target.post(
                        "/v1/auth/login", json={"login": name, "password": "bench password"}
                    )
                codes[resp.status_code] += 1

            t0 = time.perf_counter()
            flood = asyncio.gather(*(login(target, codes) for _ in range(logins)))
            loaded: list[float] = []
            while not flood.done():
                loaded += await rtts(via_ws, via_sid, 20)
            await flood
            t_flood = time.perf_counter() - t0
            after = _lag_buckets((await target.get("/metrics")).text)
            await target.aclose()
            floods[variant] = {
                "instance": addr,
                "logins": logins,
                "ok": codes[200],
                "busy_503": codes[503],
                "status_codes": {str(k): v for k, v in sorted(codes.items())},
                "seconds": round(t_flood, 2),
                "logins_per_s": round(codes[200] / t_flood, 1),
                "rtt_n": len(loaded),
                "rtt_p50_ms": _pct(loaded, 0.5),
                "rtt_p99_ms": _pct(loaded, 0.99),
                "loop_lag_p50_le_s": _lag_p99(before, after, 0.5),
                "loop_lag_p95_le_s": _lag_p99(before, after, 0.95),
                "loop_lag_p99_le_s": _lag_p99(before, after),
                "loop_lag_share_le_10ms": _share_le(before, after, 0.01),
                "loop_lag_samples": after.get(float("inf"), 0) - before.get(float("inf"), 0),
            }
        # 4. signaling flood: sockets of another account send as fast as they can (the bench
        #    lifts the per-socket message limit: the worst case) while the victim's round
        #    trips through the same instance are measured
        other = await http.post(
            "/v1/auth/register",
            json={
                "email": f"x{name}@example.com",
                "username": "x" + name,
                "password": "bench password",
                "display_name": "flooder",
            },
        )
        other.raise_for_status()
        o_token, o_uid = other.json()["token"], other.json()["user"]["id"]
        attackers = []
        for _ in range(flooders):
            ident = Identity.generate()
            proof = base64.urlsafe_b64encode(ident.sign(b"wavry-device:" + o_uid.encode()))
            resp = await http.post(
                "/v1/devices",
                headers={"Authorization": f"Bearer {o_token}"},
                json={"wavry_id": ident.wavry_id, "name": "f", "kind": "client",
                      "proof": proof.decode()},
            )  # fmt: skip
            resp.raise_for_status()
            attackers.append(ident.wavry_id)
        # the flooders run in their own process, so this one's loop only measures
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        spammer = ctx.Process(
            target=_signal_flood_main,
            args=(a_addr, o_token, attackers, child, flood_rate),
            daemon=True,
        )
        spammer.start()
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("signaling flood did not start")
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        under_flood = await rtts(c, sid, messages)
        t_sig = time.perf_counter() - t0
        parent.send("stop")
        sent_during = parent.recv() if parent.poll(30) else 0
        spammer.join(10)
        signal_flood = {
            "sockets": flooders,
            "rate_limit": flood_rate or None,
            "messages": sent_during,
            "messages_per_s": round(sent_during / max(t_sig + 0.5, 1e-9)),
            "rtt_n": len(under_flood),
            "rtt_p50_ms": _pct(under_flood, 0.5),
            "rtt_p99_ms": _pct(under_flood, 0.99),
        }
        answer_task.cancel()
        await http.aclose()
        return {
            "fd_limit": fd_limit,
            "sockets": {
                "requested": sockets,
                "alive_after_2s": alive,
                "register_s": round(t_reg, 2),
                "open_s": round(t_open, 2),
                "rss_mib": [round(x, 1) for x in rss],
                "rss_before_mib": [round(x, 1) for x in rss0],
                "kib_per_socket": per_socket_kib,
            },
            "connect_ms": {
                "n": len(connect_ms),
                "p50": _pct(connect_ms, 0.5),
                "p99": _pct(connect_ms, 0.99),
            },
            "rtt_ms": {"n": len(quiet), "p50": _pct(quiet, 0.5), "p99": _pct(quiet, 0.99)},
            "flood": floods["niced_processes"],
            "flood_baseline": floods["threads"],
            "signal_flood": signal_flood,
        }
    finally:
        for ws in held:
            with contextlib.suppress(Exception):
                await ws.close()
        for p in procs:
            p.stop()
        shutil.rmtree(data, ignore_errors=True)


def run_gateway_bench(
    sockets: int = 10_000,
    messages: int = 500,
    logins: int = 100,
    database_url: str | None = None,
    redis_url: str | None = None,
    sample: int = 200,
    flooders: int = 20,
    flood_rate: float = 3200.0,
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
        before = os.getloadavg()
        results = asyncio.run(
            _bench(sockets, messages, logins, db, redis_url, sample, flooders, flood_rate)
        )
        results["database"] = db.split("://")[0]
        f, s = results["flood"], results["sockets"]
        results["targets"] = {
            "sockets_10k_held": s["requested"] >= 10_000 and s["alive_after_2s"] == s["requested"],
            "rtt_p99_le_20ms": max(
                results["rtt_ms"]["p99"], f["rtt_p99_ms"], results["signal_flood"]["rtt_p99_ms"]
            )
            <= 20,
            "loop_lag_p99_le_10ms_in_flood": f["loop_lag_p99_le_s"] <= 0.01,
        }
        return {
            "machine": machine_facts(),
            "loadavg_before_after": [before, os.getloadavg()],
            "results": results,
        }
    finally:
        if redis_proc is not None:
            redis_proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _ms(x: float) -> str:
    return f"{x:.2f}"


def _lag(f: dict[str, Any]) -> str:
    qs = (f["loop_lag_p50_le_s"], f["loop_lag_p95_le_s"], f["loop_lag_p99_le_s"])
    return " / ".join(f"{x * 1000:g}" for x in qs) + " ms"


def bench_gateway_command(
    sockets: Annotated[
        int, typer.Option(help="Signaling sockets to hold (both instances).")
    ] = 10_000,
    messages: Annotated[int, typer.Option(help="Round trips measured at rest.")] = 500,
    logins: Annotated[int, typer.Option(help="Logins in each flood.")] = 100,
    sample: Annotated[
        int, typer.Option(help="Held sockets that each open a session (connect → accept).")
    ] = 200,
    flooders: Annotated[
        int, typer.Option(help="Sockets of another account flooding signaling messages.")
    ] = 20,
    flood_rate_pps: Annotated[
        float,
        typer.Option(
            help="Signaling flood messages/s in all (default: what one address gets through "
            "the default limits, 64 sockets x 50/s); 0 = as fast as the gateway takes them."
        ),
    ] = 3200.0,
    database_url: Annotated[
        str | None, typer.Option(help="Shared database (default: a temporary SQLite file).")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis (default: a private redis-server).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Two gateway instances + Redis: sockets held, round trip, loop lag under a login flood
    (default niced Argon2 worker processes beside the old thread pool, same run)."""
    try:
        report = run_gateway_bench(
            sockets, messages, logins, database_url, redis_url, sample, flooders, flood_rate_pps
        )
    except RuntimeError as exc:
        typer.echo(f"wavry bench gateway: error: {exc}", err=True)
        raise typer.Exit(1) from None
    r = report["results"]
    s, rt, cm, f, fb = r["sockets"], r["rtt_ms"], r["connect_ms"], r["flood"], r["flood_baseline"]
    print_table(
        f"gateway bench (2 instances, {r['database']}, Redis pub/sub; "
        f"open-files limit {r['fd_limit']})",
        ["measure", "value", "baseline (Argon2 threads)"],
        [
            ["signaling sockets held", f"{s['alive_after_2s']}/{s['requested']}", ""],
            ["  time to register / open + auth", f"{s['register_s']} / {s['open_s']} s", ""],
            ["  RSS per instance", " / ".join(f"{x} MiB" for x in s["rss_mib"]), ""],
            ["  memory per socket", " / ".join(f"{x} KiB" for x in s["kib_per_socket"]), ""],
            [
                "connect→accept from held sockets p50/p99",
                f"{_ms(cm['p50'])} / {_ms(cm['p99'])} ms (n={cm['n']})",
                "",
            ],
            [
                "round trip A→B→A p50/p99 (at rest)",
                f"{_ms(rt['p50'])} / {_ms(rt['p99'])} ms (n={rt['n']})",
                "",
            ],
            [
                "login flood",
                f"{f['ok']}/{f['logins']} ok, {f['logins_per_s']} logins/s",
                f"{fb['ok']}/{fb['logins']} ok, {fb['logins_per_s']} logins/s",
            ],
            [
                "  round trip p50/p99",
                f"{_ms(f['rtt_p50_ms'])} / {_ms(f['rtt_p99_ms'])} ms",
                f"{_ms(fb['rtt_p50_ms'])} / {_ms(fb['rtt_p99_ms'])} ms",
            ],
            [
                "  event-loop lag p50/p95/p99 ≤",
                _lag(f),
                _lag(fb),
            ],
            [
                "  lag samples ≤ 10 ms",
                f"{f['loop_lag_share_le_10ms'] * 100:.1f} %",
                f"{fb['loop_lag_share_le_10ms'] * 100:.1f} %",
            ],
            [
                "signaling flood (other account)",
                f"{r['signal_flood']['sockets']} sockets, "
                f"{r['signal_flood']['messages_per_s']} msg/s",
                "at rest (above)",
            ],
            [
                "  round trip p50/p99",
                f"{_ms(r['signal_flood']['rtt_p50_ms'])} / "
                f"{_ms(r['signal_flood']['rtt_p99_ms'])} ms",
                f"{_ms(rt['p50'])} / {_ms(rt['p99'])} ms",
            ],
        ],
    )
    t = r["targets"]
    print("targets: " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in t.items()))
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_out}")
