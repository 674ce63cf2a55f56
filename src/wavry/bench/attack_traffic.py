"""The attackers of `wavry bench attack`, each run as its own process so the host's process
pays only for receiving (``python -m wavry.bench.attack_traffic MODE ...``; a JSON line of what
it did goes to stdout).

* ``mutate PORT COUNT RATE``: a real session records its own traffic (both directions), then
  COUNT datagrams derived from it go to the host at RATE/s: bit flips, truncations, header edits
  with a valid CRC (alias, packet id, handshake message), recombined datagrams, extensions and
  replays, from 4 sockets.
* ``junk PORT SECONDS RATE``: random bytes, transport headers with random aliases, and padded
  msg1 with random keys, at RATE/s.
* ``handshakes PORT SECONDS RATE N_ADDRS``: padded msg1 (new handshake ids) from N_ADDRS
  loopback addresses; never answers; counts what the host sent back per address (the 3x rule).
* ``sessions PORT SECONDS PER_ADDR_RATE N_ADDRS``: complete real handshakes (a new identity
  each), never send Hello, Ping every 4 s to keep each session alive (the "handshake-only
  sessions" of issue 21).
"""

from __future__ import annotations

import json
import os
import random
import select
import socket
import sys
import time
from typing import Any

from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.framing import (
    COOKIE_REPLY,
    MSG2,
    crc16_kermit,
    encode_handshake_header,
    encode_transport_header,
)
from wavry.rift.handshake import InitiatorHandshake, LocalStatic
from wavry.rift.identity import Identity
from wavry.rift.noise import generate_static_key

__all__ = ["main"]


def _sock(ip: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((ip, 0))
    s.setblocking(False)
    return s


class _Pacer:
    def __init__(self, rate: float) -> None:
        self.rate, self.start, self.n = rate, time.monotonic(), 0

    def tick(self) -> None:
        self.n += 1
        if self.n % 100 == 0:
            ahead = self.n / self.rate - (time.monotonic() - self.start)
            if ahead > 0:
                time.sleep(ahead)


def _fix_crc(d: bytearray) -> bytes:
    if len(d) >= 30 and d[4:8] == bytes(4):
        d[28:30] = crc16_kermit(bytes(d[:28])).to_bytes(2, "big")
    elif len(d) >= 18:
        d[16:18] = crc16_kermit(bytes(d[:16])).to_bytes(2, "big")
    return bytes(d)


def mutate(rnd: random.Random, pool: list[bytes]) -> tuple[str, bytes]:
    d = bytearray(rnd.choice(pool))
    kind = rnd.randrange(6)
    if kind == 0:
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(d))
            d[i] ^= 1 << rnd.randrange(8)
        return "bit flips", bytes(d)
    if kind == 1:
        return "truncation", bytes(d[: rnd.randrange(len(d))])
    if kind == 2:
        if len(d) >= 30 and d[4:8] == bytes(4):
            field = rnd.choice([(8, 20), (20, 28)])
        else:
            field = rnd.choice([(4, 8), (8, 16)])
        a, b = field
        d[a:b] = rnd.randbytes(b - a)
        return "header edit", _fix_crc(d)
    if kind == 3:
        other = rnd.choice(pool)
        cut = 18 if len(d) >= 18 else len(d)
        return "recombined", _fix_crc(bytearray(d[:cut] + other[min(cut, len(other)) :]))
    if kind == 4:
        return "extended", bytes(d + rnd.randbytes(rnd.randint(1, 64)))[:1400]
    return "replay", bytes(d)


def _record(port: int, seconds: float) -> list[bytes]:
    """Real traffic of one session (handshake, Hello, pings, feedback, the host's video)."""
    import asyncio

    from wavry.net.client import ClientConnection
    from wavry.rift.client import ClientSession
    from wavry.rift.config import ClientConfig

    seen: list[bytes] = []

    class Recording:
        """The session as the adapter sees it, keeping a copy of every datagram both ways (a
        wrapper: the compiled core's methods cannot be replaced on the object)."""

        def __init__(self, session: ClientSession) -> None:
            self._session = session

        def __getattr__(self, name: str) -> Any:
            return getattr(self._session, name)

        def datagrams_to_send(self, now: float | None = None) -> list[bytes]:
            data = self._session.datagrams_to_send(now)
            seen.extend(data)
            return data

        def receive_datagram(self, data: bytes, now: float, arrival: float | None = None) -> None:
            if len(seen) < 20000:
                seen.append(data)
            self._session.receive_datagram(data, now, arrival)

    async def run() -> None:
        session = ClientSession(Identity.generate(), ClientConfig(name="attacker"))
        conn = ClientConnection(Recording(session))  # type: ignore[arg-type]
        await conn.start("127.0.0.1", port)
        await asyncio.sleep(seconds)
        await conn.close()

    asyncio.run(run())
    return seen


def run_mutate(port: int, count: int, rate: float) -> dict[str, Any]:
    pool = _record(port, 2.0)
    if not pool:
        return {"error": "no traffic recorded"}
    rnd = random.Random(21)
    socks = [_sock() for _ in range(4)]
    kinds: dict[str, int] = {}
    pacer = _Pacer(rate)
    errors = 0
    t0 = time.monotonic()
    for i in range(count):
        kind, d = mutate(rnd, pool)
        kinds[kind] = kinds.get(kind, 0) + 1
        try:
            socks[i % 4].sendto(d, ("127.0.0.1", port))
        except OSError:
            errors += 1
        pacer.tick()
    return {"sent": count, "seconds": round(time.monotonic() - t0, 2), "kinds": kinds,
            "pool": len(pool), "errors": errors}  # fmt: skip


def run_junk(port: int, seconds: float, rate: float) -> dict[str, Any]:
    rnd = random.Random(22)
    socks = [_sock() for _ in range(8)]
    pacer = _Pacer(rate)
    n = errors = 0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        k = n % 3
        if k == 0:
            d = rnd.randbytes(rnd.randrange(1, 1401))
        elif k == 1:
            d = encode_transport_header(rnd.randrange(1, 2**32), rnd.randrange(2**64))
            d += rnd.randbytes(rnd.randrange(16, 300))
        else:
            d = encode_handshake_header(rnd.randbytes(12), 1) + rnd.randbytes(32) + bytes(66)
        try:
            socks[n % 8].sendto(d, ("127.0.0.1", port))
        except OSError:
            errors += 1
        n += 1
        pacer.tick()
    return {"sent": n, "rate": round(n / seconds), "errors": errors}


def run_handshakes(port: int, seconds: float, rate: float, n_addrs: int) -> dict[str, Any]:
    rnd = random.Random(23)
    socks = [_sock(f"127.77.{i // 250}.{i % 250 + 1}") for i in range(n_addrs)]
    sent = [0] * n_addrs
    got = [0] * n_addrs
    msg2 = cookies = n = 0
    pacer = _Pacer(rate)
    t_end = time.monotonic() + seconds

    def drain(i: int) -> None:
        nonlocal msg2, cookies
        while True:
            try:
                data = socks[i].recv(2048)
            except BlockingIOError:
                return
            got[i] += len(data)
            if data[4:8] == bytes(4) and len(data) >= 28:
                number = int.from_bytes(data[20:28], "big")
                msg2 += number == MSG2
                cookies += number == COOKIE_REPLY

    while time.monotonic() < t_end:
        i = n % n_addrs
        d = encode_handshake_header(rnd.randbytes(12), 1) + rnd.randbytes(32) + bytes(66)
        try:
            socks[i].sendto(d, ("127.0.0.1", port))
            sent[i] += len(d)
        except OSError:
            pass
        n += 1
        if n % 64 == 0:
            for j in range(max(0, i - 63), i + 1):
                drain(j)
        pacer.tick()
    time.sleep(0.3)
    for i in range(n_addrs):
        drain(i)
    ratios = [g / s for g, s in zip(got, sent, strict=True) if s]
    return {
        "sent": n, "rate": round(n / seconds), "addresses": n_addrs, "msg2": msg2,
        "cookie_replies": cookies, "bytes_sent": sum(sent), "bytes_received": sum(got),
        "max_reply_ratio": round(max(ratios), 3) if ratios else None,
    }  # fmt: skip


def run_sessions(port: int, seconds: float, per_addr_rate: float, n_addrs: int) -> dict[str, Any]:
    """Handshake-only sessions: complete msg1..msg3, never Hello, Ping every 4 s."""
    host = ("127.0.0.1", port)
    socks = [_sock(f"127.88.0.{i + 1}") for i in range(n_addrs)]
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    pending: dict[bytes, tuple[InitiatorHandshake, LocalStatic, int]] = {}
    live: list[tuple[SecureChannel, int, float]] = []  # channel, socket index, next ping
    counts = {"started": 0, "completed": 0, "cookies": 0, "pings": 0}
    interval = 1.0 / (per_addr_rate * n_addrs)
    next_start = time.monotonic()
    t_end = time.monotonic() + seconds
    n = 0

    def start(i: int, cookie: bytes | None = None, me: LocalStatic | None = None) -> None:
        me = me or LocalStatic.create(Identity.generate(), generate_static_key(), "attacker")
        hs = InitiatorHandshake(me, os.urandom(12), cookie=cookie)
        pending[hs.handshake_id] = (hs, me, i)
        socks[i].sendto(hs.msg1, host)

    while time.monotonic() < t_end:
        now = time.monotonic()
        if now >= next_start:
            start(n % n_addrs)
            counts["started"] += 1
            n += 1
            next_start += interval
        ready, _, _ = select.select(socks, [], [], max(0.0, min(next_start - now, 0.01)))
        for s in ready:
            i = by_fd[s.fileno()]
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                if data[4:8] != bytes(4) or len(data) < 30:
                    continue
                entry = pending.pop(data[8:20], None)
                if entry is None:
                    continue
                hs, me, i = entry
                number = int.from_bytes(data[20:28], "big")
                if number == COOKIE_REPLY:
                    counts["cookies"] += 1
                    start(i, data[30:46], me)
                    continue
                try:
                    peer = hs.on_msg2(data[30:])
                except Exception:  # a broken msg2 is the host's problem, not this attacker's
                    continue
                assert hs.msg3 is not None
                s.sendto(hs.msg3, host)
                send_key, recv_key = hs.split()
                ch = SecureChannel(peer.session_alias, send_key, recv_key, 1400)
                live.append((ch, i, time.monotonic() + 4.0))
                counts["completed"] += 1
        now = time.monotonic()
        for k, (ch, i, due) in enumerate(live):
            if now >= due:
                ping = rift_pb2.Ping(timestamp_us=int(now * 1e6))
                _, d = ch.seal(rift_pb2.Message(control=rift_pb2.ControlMessage(ping=ping)))
                socks[i].sendto(d, host)
                counts["pings"] += 1
                live[k] = (ch, i, due + 4.0)
    return {**counts, "addresses": n_addrs, "seconds": seconds}


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "mutate":
        result = run_mutate(int(args[0]), int(args[1]), float(args[2]))
    elif mode == "junk":
        result = run_junk(int(args[0]), float(args[1]), float(args[2]))
    elif mode == "handshakes":
        result = run_handshakes(int(args[0]), float(args[1]), float(args[2]), int(args[3]))
    elif mode == "sessions":
        result = run_sessions(int(args[0]), float(args[1]), float(args[2]), int(args[3]))
    else:
        raise SystemExit(f"error: unknown mode {mode!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
