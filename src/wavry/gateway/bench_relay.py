"""``wavry bench relay``: relay forwarding rate and added latency next to a bare asyncio UDP
forwarder, both in child processes, measured in the same run by the same load generator."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from wavry.bench.report import machine_facts, print_table

__all__ = ["bench_relay_command", "run_relay_bench"]

RELAY_ID = "bench-relay"
_STAMP = struct.Struct("!QQ")  # seq, send time ns


def _uvloop_run(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


class _Forwarder(asyncio.DatagramProtocol):
    """The baseline: learn two peers from their first datagram, forward between them."""

    def __init__(self) -> None:
        self.peers: list[Any] = []
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        peers = self.peers
        if addr not in peers:
            if len(peers) < 2:
                peers.append(addr)
            return
        other = peers[1] if addr == peers[0] else peers[0] if len(peers) == 2 else None
        if other is not None:
            self.transport.sendto(data, other)


async def _serve(kind: str, pub: bytes) -> None:
    loop = asyncio.get_running_loop()
    if kind == "relay":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        from wavry.controlplane.lease import LeaseVerifier, key_id
        from wavry.relay.server import RelayConfig, RelayServer

        key = Ed25519PublicKey.from_public_bytes(pub)
        config = RelayConfig(
            relay_id=RELAY_ID, ip_packet_rate=1e9, ip_packet_burst=1e9, max_bitrate_kbps=10**8
        )
        server = RelayServer(config, LeaseVerifier({key_id(key): key}, RELAY_ID))
        addr = await server.start("127.0.0.1", 0)
    else:
        transport, _ = await loop.create_datagram_endpoint(_Forwarder, local_addr=("127.0.0.1", 0))
        addr = transport.get_extra_info("sockname")
    print(f"{addr[0]} {addr[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes stdin to stop us


def child_main() -> None:
    """Entry of the forwarding child process: ``KIND PUBKEY_HEX`` in argv."""
    _uvloop_run(_serve(sys.argv[1], bytes.fromhex(sys.argv[2])))


class _Sink(asyncio.DatagramProtocol):
    def __init__(self, header: int) -> None:
        self.header = header
        self.latencies: list[int] = []
        self.count = 0
        self.record = True
        self.first: asyncio.Future[bytes] | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now = time.perf_counter_ns()
        if self.first is not None and not self.first.done():
            self.first.set_result(data)
            return
        self.count += 1
        if self.record and len(data) >= self.header + _STAMP.size:
            _, sent = _STAMP.unpack_from(data, self.header)
            self.latencies.append(now - sent)


def _pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0  # µs


async def _measure(kind: str, dest: tuple[str, int], rate: int, duration: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    sid = uuid.uuid4()
    header = 20
    ta, a = await loop.create_datagram_endpoint(lambda: _Sink(header), local_addr=("127.0.0.1", 0))
    tb, b = await loop.create_datagram_endpoint(lambda: _Sink(header), local_addr=("127.0.0.1", 0))
    from wavry.relay import wire

    prefix = wire.encode_header(wire.PacketType.FORWARD, sid)
    try:
        for t, s, role in ((ta, a, wire.Role.CLIENT), (tb, b, wire.Role.HOST)):
            s.first = loop.create_future()
            if kind == "relay":
                lease = _LEASES[role.name.lower()](sid)
                t.sendto(wire.encode_lease_present(sid, role, lease), dest)
                reply = await asyncio.wait_for(s.first, 3)
                wire.decode_lease_ack(reply)
            else:
                t.sendto(b"hello", dest)
                s.first.set_result(b"")
        await asyncio.sleep(0.05)
        # 1. paced latency at `rate` datagrams/s
        b.latencies.clear()
        b.count = 0
        start = time.perf_counter()
        sent = 0
        while (elapsed := time.perf_counter() - start) < duration:
            due = int(elapsed * rate)
            while sent < due:
                ta.sendto(prefix + _STAMP.pack(sent, time.perf_counter_ns()), dest)
                sent += 1
            await asyncio.sleep(0.0005)
        await asyncio.sleep(0.2)
        paced = {
            "rate": rate,
            "sent": sent,
            "received": b.count,
            "p50_us": _pct(b.latencies, 0.5),
            "p99_us": _pct(b.latencies, 0.99),
        }
        # 2. saturation: send as fast as the loop allows, count what comes out
        b.record = False
        b.count = 0
        sent = 0
        payload = prefix + bytes(100)
        start = time.perf_counter()
        while time.perf_counter() - start < duration:
            for _ in range(64):
                ta.sendto(payload, dest)
            sent += 64
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        rate_out = b.count / duration
        return {**paced, "blast_sent": sent, "blast_received": b.count, "forward_rate": rate_out}
    finally:
        ta.close()
        tb.close()


_LEASES: dict[str, Any] = {}


async def _bench(rate: int, duration: float) -> dict[str, Any]:
    from wavry.controlplane.lease import LeaseSigner, generate_private_key

    key = generate_private_key()
    signer = LeaseSigner(key)
    for role in ("client", "host"):
        _LEASES[role] = lambda sid, role=role: signer.mint(
            "bench-" + role, sid, role, RELAY_ID, slimit_kbps=10**7, hlimit_kbps=10**8
        )
    from cryptography.hazmat.primitives import serialization

    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    results: dict[str, Any] = {}
    code = "from wavry.gateway.bench_relay import child_main; child_main()"
    for kind in ("baseline", "relay"):
        proc = subprocess.Popen(
            [sys.executable, "-c", code, kind, pub.hex()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
            host, port = line.split()
            results[kind] = await _measure(kind, (host, int(port)), rate, duration)
        finally:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    base, relay = results["baseline"], results["relay"]
    results["added_p50_us"] = relay["p50_us"] - base["p50_us"]
    results["added_p99_us"] = relay["p99_us"] - base["p99_us"]
    return results


def run_relay_bench(rate: int = 10_000, duration: float = 2.0) -> dict[str, Any]:
    return {"machine": machine_facts(), "results": _run_sync(_bench(rate, duration))}


def _run_sync(coro: Any) -> Any:
    out: list[Any] = []

    async def wrap() -> None:
        out.append(await coro)

    _uvloop_run(wrap())
    return out[0]


def bench_relay_command(
    rate: Annotated[
        int, typer.Option(help="Paced rate for the latency run (datagrams/s).")
    ] = 10_000,
    duration: Annotated[float, typer.Option(help="Seconds per phase.")] = 2.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Relay forwarding rate and added latency vs. a bare asyncio UDP forwarder."""
    report = run_relay_bench(rate, duration)
    r = report["results"]
    rows = []
    for kind in ("baseline", "relay"):
        x = r[kind]
        rows.append(
            [
                "bare asyncio forwarder" if kind == "baseline" else "wavry relay",
                f"{x['forward_rate']:,.0f}",
                f"{x['received']}/{x['sent']}",
                f"{x['p50_us']:.0f}",
                f"{x['p99_us']:.0f}",
            ]
        )
    rows.append(
        ["added by the relay", "", "", f"{r['added_p50_us']:.0f}", f"{r['added_p99_us']:.0f}"]
    )
    print_table(
        f"relay bench (paced {rate}/s, {duration:g} s per phase, loopback, one session)",
        ["path", "max fwd/s", "paced rcvd/sent", "p50 µs", "p99 µs"],
        rows,
    )
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_out}")
