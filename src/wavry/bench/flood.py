"""``wavry bench flood``: junk datagrams at the relay and at the gateway's STUN port while a
relayed session streams (issue 21 item 3), next to the same stream without a flood, in one run.

Parties, each its own process: a ``wavry relay`` and a ``wavry gateway`` (real commands), a
flood generator sending from eight loopback source addresses (127.0.0.2–9, so the relay's
per-IP limits see a spread-out flood, the hard case), and this process, which streams stamped
FORWARD datagrams client → relay → host through a lease-bound, address-proven session and
measures each datagram's one-way delay (one clock). A legitimate STUN client (127.0.0.10) asks
the gateway 20 times a second throughout.

Phases of ``--seconds`` each: baseline (no flood), relay flood, STUN flood. Reported per phase:
stream datagrams delivered and on time (delay ≤ ``--deadline-ms``), delay p50/p99
(``wavry.percentile``), the flood's achieved rate, the bytes the flooded service sent back to
the flooding addresses (amplification: answer bytes / flood bytes), the services' CPU time,
and the legitimate STUN answers.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Annotated, Any

import typer

from wavry.bench.report import machine_facts, print_table
from wavry.percentile import percentile

__all__ = ["bench_flood_command", "run_flood_bench"]

RELAY_ID = "bench-flood"
FLOOD_SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]
STUN_CLIENT = "127.0.0.10"
_STAMP = struct.Struct("!QII")  # perf_counter_ns at send, phase, sequence number


def _q(values: list[float], q: float) -> float:
    p = percentile(values, q)
    return float("nan") if p is None else p


# --- the flood generator (its own process) -------------------------------------------------


def _junk(kind: str, sid: bytes, rng: random.Random) -> list[bytes]:
    """A pool of hostile datagrams for ``kind`` ("relay" or "stun")."""
    pool: list[bytes] = []
    if kind == "relay":
        for _ in range(256):
            n = rng.randrange(1, 1200)
            pool.append(rng.randbytes(n))  # noise
            pool.append(b"W\x01\x10\x00" + rng.randbytes(16) + rng.randbytes(n))  # unknown sid
            pool.append(b"W\x01\x10\x00" + sid + rng.randbytes(n))  # injection, unbound source
            token = b"v4.public." + rng.randbytes(200).hex().encode()
            pool.append(b"W\x01\x01\x00" + sid + b"\x00" + struct.pack("!H", len(token)) + token)
            proof = b"\x00" + rng.randbytes(96) + struct.pack("!H", len(token)) + token
            pool.append(b"W\x01\x06\x00" + sid + proof)  # forged proof
    else:
        for _ in range(256):
            tid = rng.randbytes(12)
            pool.append(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)  # Binding request
            pool.append(rng.randbytes(rng.randrange(1, 600)))  # noise
            pool.append(struct.pack("!HHI", 0x0001, 8, 0x2112A442) + tid + b"\x80\x28\x00\x04xxxx")
    return pool


def _flood_main(
    kind: str, target: tuple[str, int], rate: int, seconds: float, sid: bytes, conn: Connection
) -> None:
    rng = random.Random(7)
    pool = _junk(kind, sid, rng)
    socks = []
    for src in FLOOD_SOURCES:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        socks.append(s)
    conn.send("ready")
    conn.recv()  # go
    sent = sent_bytes = replies = reply_bytes = 0
    per_ms = rate / 1000.0
    start = time.perf_counter()
    due = 0.0
    i = 0
    while True:
        now = time.perf_counter() - start
        if now >= seconds:
            break
        due = per_ms * now * 1000.0
        while sent < due:
            data = pool[i % len(pool)]
            try:
                socks[i % len(socks)].sendto(data, target)
                sent += 1
                sent_bytes += len(data)
            except (BlockingIOError, InterruptedError):
                break
            i += 1
        for s in socks:
            while True:
                try:
                    reply = s.recv(65535)
                except (BlockingIOError, InterruptedError, ConnectionRefusedError):
                    break
                replies += 1
                reply_bytes += len(reply)
        time.sleep(0.0005)
    time.sleep(0.2)
    for s in socks:
        while True:
            try:
                reply = s.recv(65535)
            except (BlockingIOError, InterruptedError, ConnectionRefusedError):
                break
            replies += 1
            reply_bytes += len(reply)
        s.close()
    conn.send(
        {
            "sent": sent,
            "sent_bytes": sent_bytes,
            "rate": round(sent / seconds),
            "replies": replies,
            "reply_bytes": reply_bytes,
        }
    )


# --- services ------------------------------------------------------------------------------


class _Service:
    def __init__(self, cmd: list[str], pattern: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{' '.join(cmd[:4])} exited early")
            m = re.search(pattern, line)
            if m:
                self.match = m
                threading.Thread(target=self._drain, daemon=True).start()
                return
        raise RuntimeError(f"{' '.join(cmd[:4])} did not start")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the service process so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- the measured stream and the legitimate STUN client ---------------------------------------


def _bind_role(
    sock: socket.socket, relay: tuple[str, int], sid: uuid.UUID, role: Any, token: str, key: Any
) -> None:
    from wavry.relay import wire

    sock.settimeout(3)
    sock.sendto(wire.encode_lease_present(sid, role, token), relay)
    challenge, _ = sock.recvfrom(2048)
    sock.sendto(wire.answer_challenge(challenge, token, key.sign), relay)
    wire.decode_lease_ack(sock.recvfrom(2048)[0])  # raises on a reject


class _Stream:
    """client → relay → host, ``pps`` stamped datagrams of ``size`` bytes."""

    def __init__(self, relay: tuple[str, int], sid: uuid.UUID, pps: int, size: int) -> None:
        self.relay, self.sid, self.pps, self.size = relay, sid, pps, size
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client.bind(("127.0.0.1", 0))
        self.host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.host.bind(("127.0.0.1", 0))
        with contextlib.suppress(OSError):
            self.host.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)

    def run(self, seconds: float, phase: int) -> dict[str, Any]:
        from wavry.relay import wire

        prefix = wire.encode_header(wire.PacketType.FORWARD, self.sid)
        pad = bytes(max(0, self.size - len(prefix) - _STAMP.size))
        delays: list[float] = []
        stale = [0]  # datagrams of an earlier phase arriving now
        foreign = [0]  # anything else reaching the host (would be forwarded junk)
        stop = threading.Event()

        def receive() -> None:
            self.host.settimeout(0.2)
            while not stop.is_set():
                try:
                    data = self.host.recv(65535)
                except TimeoutError:
                    continue
                t = time.perf_counter_ns()
                if data.startswith(prefix) and len(data) >= len(prefix) + _STAMP.size:
                    sent_ns, tag, _seq = _STAMP.unpack_from(data, len(prefix))
                    if tag == phase:
                        delays.append((t - sent_ns) / 1e6)
                    elif tag < phase:
                        stale[0] += 1
                    else:
                        foreign[0] += 1
                else:
                    foreign[0] += 1

        rx = threading.Thread(target=receive, daemon=True)
        rx.start()
        interval = 1.0 / self.pps
        start = time.perf_counter()
        sent = 0
        while True:
            due = start + sent * interval
            now = time.perf_counter()
            if now - start >= seconds:
                break
            if due > now:
                time.sleep(due - now)
            stamp = _STAMP.pack(time.perf_counter_ns(), phase, sent)
            self.client.sendto(prefix + stamp + pad, self.relay)
            sent += 1
        time.sleep(0.3)
        stop.set()
        rx.join()
        return {"sent": sent, "delays_ms": delays, "stale": stale[0], "foreign": foreign[0]}


def _stun_client(target: tuple[str, int], seconds: float, per_s: float) -> dict[str, Any]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((STUN_CLIENT, 0))
    s.settimeout(0.5)
    rtts: list[float] = []
    asked = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        tid = os.urandom(12)
        t0 = time.perf_counter()
        s.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, target)
        asked += 1
        with contextlib.suppress(TimeoutError):
            while True:
                data = s.recv(2048)
                if data[8:20] == tid:
                    rtts.append((time.perf_counter() - t0) * 1000)
                    break
        time.sleep(max(0.0, 1.0 / per_s - (time.perf_counter() - t0)))
    s.close()
    return {"asked": asked, "answered": len(rtts), "rtts_ms": rtts}


# --- the run -----------------------------------------------------------------------------------


def _phase(
    index: int,
    name: str,
    flood: tuple[str, tuple[str, int]] | None,
    stream: _Stream,
    stun: tuple[str, int],
    rate: int,
    seconds: float,
    deadline_ms: float,
    services: dict[str, _Service],
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    proc = conn = None
    if flood is not None:
        conn, child = ctx.Pipe()
        proc = ctx.Process(
            target=_flood_main,
            args=(flood[0], flood[1], rate, seconds, stream.sid.bytes, child),
            daemon=True,
        )
        proc.start()
        if not conn.poll(30):
            raise RuntimeError("flood generator did not start")
        conn.recv()
        conn.send("go")
    stun_result: dict[str, Any] = {}
    st = threading.Thread(
        target=lambda: stun_result.update(_stun_client(stun, seconds, 20.0)), daemon=True
    )
    cpu0 = {k: v.cpu_seconds() for k, v in services.items()}
    st.start()
    result = stream.run(seconds, index)
    st.join()
    cpu = {k: round(v.cpu_seconds() - cpu0[k], 2) for k, v in services.items()}
    flood_result: dict[str, Any] | None = None
    if proc is not None and conn is not None:
        flood_result = conn.recv() if conn.poll(30) else None
        proc.join(10)
    delays = result["delays_ms"]
    sent = result["sent"]
    on_time = sum(1 for d in delays if d <= deadline_ms)
    out: dict[str, Any] = {
        "phase": name,
        "stream_sent": sent,
        "stream_delivered": len(delays),
        "delivered_ratio": len(delays) / sent if sent else float("nan"),
        "on_time_ratio": on_time / sent if sent else float("nan"),
        "delay_p50_ms": _q(delays, 0.5),
        "delay_p99_ms": _q(delays, 0.99),
        "stun_asked": stun_result.get("asked", 0),
        "stun_answered": stun_result.get("answered", 0),
        "stun_rtt_p99_ms": _q(stun_result.get("rtts_ms", []), 0.99),
        "stale_from_earlier_phase": result["stale"],
        "foreign_at_host": result["foreign"],
        "cpu_seconds": cpu,
        "flood": flood_result,
    }
    if flood_result is not None and flood_result["sent_bytes"]:
        out["amplification"] = flood_result["reply_bytes"] / flood_result["sent_bytes"]
        target = "relay" if flood is not None and flood[0] == "relay" else "gateway"
        per = cpu[target] / max(1, flood_result["sent"])
        out["target_cpu_us_per_junk"] = round(per * 1e6, 2)
    return out


def _relay_metrics(http: tuple[str, int]) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://{http[0]}:{http[1]}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def run_flood_bench(
    rate: int = 50_000,
    seconds: float = 5.0,
    stream_pps: int = 1000,
    size: int = 1200,
    deadline_ms: float = 20.0,
) -> dict[str, Any]:
    from wavry.controlplane.lease import LeaseSigner, generate_private_key, save_public_key
    from wavry.relay import wire
    from wavry.rift.identity import Identity

    tmp = Path(tempfile.mkdtemp(prefix="wavry-flood-bench-"))
    services: list[_Service] = []
    try:
        key = generate_private_key()
        save_public_key(key.public_key(), tmp / "lease.pub")
        relay = _Service(
            [sys.executable, "-m", "wavry", "relay", "--listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--relay-id", RELAY_ID,
             "--lease-public-key", str(tmp / "lease.pub"), "--log-level", "warning"],
            r"udp 127\.0\.0\.1:(\d+).*http://127\.0\.0\.1:(\d+)/",
        )  # fmt: skip
        services.append(relay)
        relay_addr = ("127.0.0.1", int(relay.match.group(1)))
        relay_http = ("127.0.0.1", int(relay.match.group(2)))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            gw_port = probe.getsockname()[1]
        gateway = _Service(
            [sys.executable, "-m", "wavry.gateway", "--listen", f"127.0.0.1:{gw_port}",
             "--stun-listen", "127.0.0.1:0", "--data-dir", str(tmp / "gw"),
             "--log-level", "warning"],
            r"STUN on udp 127\.0\.0\.1:(\d+);",
        )  # fmt: skip
        services.append(gateway)
        stun_addr = ("127.0.0.1", int(gateway.match.group(1)))

        sid = uuid.uuid4()
        signer = LeaseSigner(key)
        stream = _Stream(relay_addr, sid, stream_pps, size)
        for sock, role in ((stream.client, wire.Role.CLIENT), (stream.host, wire.Role.HOST)):
            device = Identity.generate()
            token = signer.mint(
                device.wavry_id, sid, role.claim, RELAY_ID, slimit_kbps=10**6, hlimit_kbps=10**6
            )
            _bind_role(sock, relay_addr, sid, role, token, device)
        before = _relay_metrics(relay_http)
        procs = {"relay": relay, "gateway": gateway}
        phases = [
            _phase(0, "baseline", None, stream, stun_addr, rate, seconds, deadline_ms, procs),
            _phase(1, "relay flood", ("relay", relay_addr), stream, stun_addr, rate, seconds,
                   deadline_ms, procs),
            _phase(2, "STUN flood", ("stun", stun_addr), stream, stun_addr, rate, seconds,
                   deadline_ms, procs),
        ]  # fmt: skip
        after = _relay_metrics(relay_http)
        dropped = {
            k.split('"')[1]: after[k] - before.get(k, 0.0)
            for k in after
            if k.startswith("wavry_relay_dropped_total{")
        }
        base = phases[0]
        for p in phases[1:]:
            p["on_time_vs_baseline"] = (
                p["on_time_ratio"] / base["on_time_ratio"] if base["on_time_ratio"] else None
            )
        results = {
            "rate": rate,
            "seconds": seconds,
            "stream_pps": stream_pps,
            "datagram_bytes": size,
            "deadline_ms": deadline_ms,
            "phases": phases,
            "relay_dropped": {k: int(v) for k, v in dropped.items() if v},
            "services_alive": all(s.alive() for s in services),
            "targets": {
                "on_time_ge_99pct_of_baseline": all(
                    (p.get("on_time_vs_baseline") or 0) >= 0.99 for p in phases[1:]
                ),
                "flood_rate_reached": all(
                    p["flood"] is not None and p["flood"]["rate"] >= 0.95 * rate for p in phases[1:]
                ),
                "amplification_le_3x": all(p.get("amplification", 0) <= 3 for p in phases[1:]),
            },
        }
        stream.client.close()
        stream.host.close()
        return {"machine": machine_facts(), "results": results}
    finally:
        for s in services:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _f(x: float, unit: str = "") -> str:
    return "–" if x != x else f"{x:.2f}{unit}"


def bench_flood_command(
    rate_pps: Annotated[int, typer.Option(help="Junk datagrams per second.")] = 50_000,
    seconds: Annotated[float, typer.Option(help="Length of each phase.")] = 5.0,
    stream_pps: Annotated[int, typer.Option(help="Relayed stream datagrams per second.")] = 1000,
    deadline_ms: Annotated[float, typer.Option(help="A stream datagram is on time within.")] = 20,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Junk floods at the relay and the gateway's STUN while a relayed session streams."""
    try:
        report = run_flood_bench(rate_pps, seconds, stream_pps, 1200, deadline_ms)
    except (RuntimeError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    r = report["results"]
    rows = []
    for p in r["phases"]:
        fl = p["flood"]
        rows.append(
            [
                p["phase"],
                f"{fl['rate']}/s" if fl else "–",
                f"{p['stream_delivered']}/{p['stream_sent']}",
                f"{p['on_time_ratio'] * 100:.2f} %",
                f"{_f(p['delay_p50_ms'])} / {_f(p['delay_p99_ms'])} ms",
                f"{p.get('amplification', 0):.3f}×" if fl else "–",
                f"{p['cpu_seconds']['relay']} / {p['cpu_seconds']['gateway']} s",
                f"{p['stun_answered']}/{p['stun_asked']}, p99 {_f(p['stun_rtt_p99_ms'])} ms",
            ]
        )
    print_table(
        f"relayed stream {r['stream_pps']} pps × {r['datagram_bytes']} B; on time ≤ "
        f"{r['deadline_ms']} ms; {r['seconds']} s per phase",
        ["phase", "junk", "delivered", "on time", "delay p50/p99", "answer/junk bytes",
         "CPU relay / gateway", "legit STUN"],
        rows,
    )  # fmt: skip
    print("relay drops by reason: " + json.dumps(r["relay_dropped"]))
    for p in r["phases"][1:]:
        if "target_cpu_us_per_junk" in p:
            print(
                f"{p['phase']}: {p['target_cpu_us_per_junk']} µs of service CPU per junk datagram"
            )
    print(
        "targets: " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in r["targets"].items())
    )
    if json_file is not None:
        json_file.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_file}")
