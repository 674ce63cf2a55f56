"""`wavry bench transport`: the cost of RIFT's secure transport, next to raw floors.

Measured in one run, on one core:
- handshakes/s: the host side of a full handshake (msg1 → msg2, msg3 → session) through
  HostEndpoint, and both sides together; floor = the bare public-key operations a responder
  cannot avoid (X25519 key generation, 3 DH, one Ed25519 signature check);
- seal+open of a 1200-byte payload through SecureChannel; floor = bare ChaCha20Poly1305;
- per-datagram receive cost on real loopback sockets: recvfrom + header parse + replay check +
  decrypt + protobuf parse + dispatch to an event; floor = recvfrom + bare decrypt. Bare
  recvfrom and sendto are reported too.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wavry.bench.report import machine_facts, print_table
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import HostConfig
from wavry.rift.crypto import nonce_for
from wavry.rift.framing import TransportDatagram, parse_datagram
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.loopback import Loopback

PAYLOAD = 1200


def _best_of(runs: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(runs)]
    return min(samples), samples


def _bench_handshakes(n: int) -> dict[str, Any]:
    host_id, client_id = Identity.generate(), Identity.generate()
    cfg = HostConfig(trust_any=True, handshake_rate_per_ip=1e9, handshake_burst_per_ip=1e9)
    host = HostEndpoint(host_id, cfg)
    host_time = 0.0
    t0 = time.perf_counter()
    for i in range(n):
        client = ClientSession(client_id)
        client.connect(1000.0)
        addr = ("10.0.0.1", 1024 + i)
        for data in client.datagrams_to_send():  # msg1
            s = time.perf_counter()
            host.receive_datagram(data, addr, 1000.0)
            out = host.datagrams_to_send()
            host_time += time.perf_counter() - s
        for data, _ in out:  # msg2
            client.receive_datagram(data, 1000.0)
        for data in client.datagrams_to_send():  # msg3 + Hello
            s = time.perf_counter()
            host.receive_datagram(data, addr, 1000.0)
            host.datagrams_to_send()
            while host.next_event() is not None:
                pass
            host_time += time.perf_counter() - s
        if len(host.sessions) > 256:
            host.sessions.clear()
    both = time.perf_counter() - t0
    assert host.counters.handshakes_completed == n, "handshakes did not complete"

    # Floor: the public-key work a responder must do for one handshake.
    peer_pub = X25519PrivateKey.generate().public_key()
    sig_key = Ed25519PrivateKey.generate()
    sig = sig_key.sign(b"x" * 49)
    vk = sig_key.public_key()
    t0 = time.perf_counter()
    for _ in range(n):
        e = X25519PrivateKey.generate()
        e.exchange(peer_pub)
        e.exchange(peer_pub)
        e.exchange(peer_pub)
        vk.verify(sig, b"x" * 49)
    floor = time.perf_counter() - t0
    return {
        "handshakes": n,
        "host_side_per_s": n / host_time,
        "both_sides_per_s": n / both,
        "host_side_us": host_time / n * 1e6,
        "floor_us": floor / n * 1e6,
        "floor_per_s": n / floor,
    }


def _active_pair() -> tuple[ClientSession, HostEndpoint, int]:
    host = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
    client = ClientSession(Identity.generate())
    lb = Loopback(client, host, client_addr=("127.0.0.1", 9))
    client.connect(1000.0)
    lb.pump(1000.0)
    assert client.channel is not None and host.sessions
    alias = next(iter(host.sessions))
    return client, host, alias


def _bench_seal_open(n: int) -> dict[str, Any]:
    client, host, alias = _active_pair()
    assert client.channel is not None
    send = client.channel
    recv = host.sessions[alias].channel
    payload = os.urandom(PAYLOAD)

    def ours() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            _, d = send.seal_bytes(payload)
            dg = parse_datagram(d)
            assert isinstance(dg, TransportDatagram)
            assert recv.open_bytes(dg) is not None
        return (time.perf_counter() - t0) / n * 1e6

    aead = ChaCha20Poly1305(os.urandom(32))
    aad = b"\x00" * 18

    def floor() -> float:
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            nonce = nonce_for(i)
            aead.decrypt(nonce, aead.encrypt(nonce, payload, aad), aad)
        return (time.perf_counter() - t0) / n * 1e6

    o, _ = _best_of(3, ours)
    f, _ = _best_of(3, floor)
    return {"payload_bytes": PAYLOAD, "ours_us": o, "floor_us": f, "ratio": o / f}


def _socket_pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root only)
    except OSError:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    return tx, rx


def _bench_datagrams(batches: int, batch: int) -> dict[str, Any]:
    client, host, alias = _active_pair()
    assert client.channel is not None
    sealed: list[bytes] = []
    chunk = rift_pb2.VideoChunk(
        frame_id=1, chunk_index=0, chunk_count=1, timestamp_us=1, payload=os.urandom(PAYLOAD - 40)
    )
    media = rift_pb2.Message(media=rift_pb2.MediaMessage(video=chunk))
    for _ in range(batches * batch):
        sealed.append(client.channel.seal(media)[1])
    plain_key = ChaCha20Poly1305(os.urandom(32))
    raw = [
        d[:18] + plain_key.encrypt(nonce_for(int.from_bytes(d[8:16], "big")), d[18:-16], d[:18])
        for d in sealed[:batch]
    ]
    tx, rx = _socket_pair()
    addr = ("127.0.0.1", 9)

    def timed_recv(datagrams: list[bytes], handle: Callable[[bytes], None]) -> float:
        for d in datagrams:
            tx.send(d)
        recv = rx.recvfrom
        t0 = time.perf_counter()
        for _ in range(len(datagrams)):
            data, _ = recv(2048)
            handle(data)
        return (time.perf_counter() - t0) / len(datagrams) * 1e6

    def core(data: bytes) -> None:
        host.receive_datagram(data, addr, 1000.0)
        while host.next_event() is not None:
            pass

    def floor_decrypt(data: bytes) -> None:
        plain_key.decrypt(nonce_for(int.from_bytes(data[8:16], "big")), data[18:], data[:18])

    def nothing(data: bytes) -> None:
        pass

    full, floor, bare = [], [], []
    for b in range(batches):
        full.append(timed_recv(sealed[b * batch : (b + 1) * batch], core))
        floor.append(timed_recv(raw, floor_decrypt))
        bare.append(timed_recv(raw, nothing))
    received = host.sessions[alias].channel.counters.received
    assert received >= batches * batch, f"core accepted only {received} datagrams"
    t0 = time.perf_counter()
    n = batch * 4
    for i in range(n):
        tx.send(raw[i % batch])
        if i % batch == batch - 1:
            while True:
                try:
                    rx.recv(2048, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
    sendto_us = (time.perf_counter() - t0) / n * 1e6
    tx.close()
    rx.close()
    f_med = statistics.median(full)
    fl_med = statistics.median(floor)
    return {
        "datagram_bytes": len(sealed[0]),
        "datagrams": batches * batch,
        "full_us_p50": f_med,
        "full_us_min": min(full),
        "floor_us_p50": fl_med,
        "bare_recvfrom_us_p50": statistics.median(bare),
        "bare_sendto_us": sendto_us,
        "ratio_to_floor": f_med / fl_med,
    }


def run_transport_bench(quick: bool = False) -> dict[str, Any]:
    hs = _bench_handshakes(200 if quick else 1000)
    so = _bench_seal_open(5000 if quick else 30000)
    dg = _bench_datagrams(5 if quick else 20, 1000)
    targets = {
        "handshakes_per_s_ge_500": hs["host_side_per_s"] >= 500,
        "per_datagram_le_15us": dg["full_us_p50"] <= 15.0,
        "per_datagram_le_3x_floor": dg["ratio_to_floor"] <= 3.0,
    }
    print_table(
        "RIFT transport (one core)",
        ["measure", "wavry", "floor", "ratio"],
        [
            [
                "handshakes/s (host side)",
                f"{hs['host_side_per_s']:.0f}",
                f"{hs['floor_per_s']:.0f}",
                f"{hs['floor_per_s'] / hs['host_side_per_s']:.2f}x",
            ],
            ["handshakes/s (both sides)", f"{hs['both_sides_per_s']:.0f}", "", ""],
            [
                f"seal+open {PAYLOAD} B (us)",
                f"{so['ours_us']:.2f}",
                f"{so['floor_us']:.2f}",
                f"{so['ratio']:.2f}x",
            ],
            [
                "per-datagram receive (us)",
                f"{dg['full_us_p50']:.2f}",
                f"{dg['floor_us_p50']:.2f}",
                f"{dg['ratio_to_floor']:.2f}x",
            ],
            ["bare recvfrom (us)", f"{dg['bare_recvfrom_us_p50']:.2f}", "", ""],
            ["bare sendto (us)", f"{dg['bare_sendto_us']:.2f}", "", ""],
        ],
    )
    for k, v in targets.items():
        print(f"  target {k}: {'met' if v else 'MISSED'}")
    return {
        "bench": "transport",
        "machine": machine_facts(),
        "handshake": hs,
        "seal_open": so,
        "datagram": dg,
        "targets": targets,
    }
