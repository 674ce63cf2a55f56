"""`wavry bench transport`: the cost of RIFT's secure transport, next to raw floors.

Measured in one run, on one core:
- handshakes/s: the host side of a full handshake (msg1 → msg2, msg3 → session) through
  HostEndpoint, and both sides together; floor = the bare public-key operations a responder
  cannot avoid (X25519 key generation, 3 DH, one Ed25519 signature check);
- seal+open of a 1200-byte payload through SecureChannel; floor = bare ChaCha20Poly1305;
- sending a paced run of equal datagrams: plain sendto per datagram vs one UDP_SEGMENT (GSO)
  sendmsg per run (the floor column is plain sendto);
- per-datagram receive cost on real loopback sockets: recvfrom + header parse + replay check +
  decrypt + protobuf parse + dispatch to an event; floor = recvfrom + bare decrypt. Bare
  recvfrom and sendto are reported too.
"""

from __future__ import annotations

import os
import random
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
from wavry.rift.testing.loopback import Loopback

PAYLOAD = 1200


def _opt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _ratio(a: float, b: float | None) -> str:
    return "-" if not b else f"{a / b:.2f}x"


def _best_of(runs: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(runs)]
    return min(samples), samples


def _bench_handshakes(n: int) -> dict[str, Any]:
    host_id, client_id = Identity.generate(), Identity.generate()
    cfg = HostConfig(
        trust_any=True,
        handshake_rate_per_ip=1e9,
        handshake_burst_per_ip=1e9,
        handshake_rate_total=1e9,
    )
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


def _input_datagrams(client: ClientSession, n: int) -> list[tuple[bytes, float]]:
    """Mouse moves as a client sends them (sealed by the session's channel)."""
    assert client.channel is not None
    out = []
    for i in range(n):
        ev = rift_pb2.InputMessage(timestamp_us=i, mouse_move=rift_pb2.MouseMove(x=0.5, y=0.25))
        out.append((client.channel.seal(rift_pb2.Message(input=ev))[1], 1000.0 + i * 1e-4))
    return out


def _video_datagrams(host: HostEndpoint, alias: int, frames: int) -> list[tuple[bytes, float]]:
    """60 fps frames of ~11 kB (≈ 5 Mbit/s) through send_frame: chunks, FEC parities, pacing."""
    out: list[tuple[bytes, float]] = []
    for f in range(frames):
        t = 1000.0 + f / 60
        host.send_frame(alias, os.urandom(11000), t, keyframe=f == 0, timestamp_us=int(t * 1e6))
        for k in range(40):
            now = t + k * 0.0004
            out.extend((d, now + 0.0005) for d, _ in host.datagrams_to_send(now))
    return out


def _bench_path(
    datagrams: list[tuple[bytes, float]],
    handle: Callable[[bytes, float], None],
    batch: int,
    *,
    batched: bool = False,
) -> dict[str, Any]:
    """Per-datagram receive cost in CPU time (this process's user + system time, which a busy
    machine inflates far less than wall time), median over batches of `batch` datagrams.

    `batched`: the datagrams reach the socket as the host sends them (runs of up to 64 with one
    UDP_SEGMENT send each) and are read as the client reads them (UDP_GRO: a run per recvmsg,
    split at the segment size). The floor is always the same datagrams read one `recvfrom` each
    and decrypted bare; `floor_batched_us_p50` is the floor read the batched way."""
    from wavry.net.gso import GsoSender
    from wavry.net.udp import ANCILLARY_SPACE, RECV_SIZE, enable_gro, read_ancillary

    plain_key = ChaCha20Poly1305(os.urandom(32))
    raw = [
        (
            d[:18]
            + plain_key.encrypt(nonce_for(int.from_bytes(d[8:16], "big")), d[18:-16], d[:18]),
            t,
        )
        for d, t in datagrams[:batch]
    ]
    tx, rx = _socket_pair()
    grx: socket.socket | None = None
    gtx: socket.socket | None = None
    if batched:
        gtx, grx = _socket_pair()
        if not enable_gro(grx):
            grx.close()
            gtx.close()
            grx = gtx = None
    gso = None
    if gtx is not None:
        plain_tx = gtx

        def plain(d: bytes, a: Any) -> None:
            plain_tx.sendto(d, a)

        gso = GsoSender(gtx, plain)

    def timed(items: list[tuple[bytes, float]], fn: Callable[[bytes, float], None]) -> float:
        for d, _ in items:
            tx.send(d)
        recv = rx.recvfrom
        t0 = time.process_time()
        for _, when in items:
            data, _ = recv(2048)
            fn(data, when)
        return (time.process_time() - t0) / len(items) * 1e6

    def timed_batched(
        items: list[tuple[bytes, float]], fn: Callable[[bytes, float], None]
    ) -> float:
        assert grx is not None and gso is not None
        addr = grx.getsockname()
        payloads = [d for d, _ in items]
        for start in range(0, len(payloads), 64):
            gso.send_run(payloads[start : start + 64], addr)  # as HostServer sends a flush
        whens = [w for _, w in items]
        got = 0
        t0 = time.process_time()
        while got < len(items):
            data, anc, _, _ = grx.recvmsg(RECV_SIZE, ANCILLARY_SPACE)
            _, segment = read_ancillary(anc)
            if 0 < segment < len(data):
                for offset in range(0, len(data), segment):
                    fn(data[offset : offset + segment], whens[got])
                    got += 1
            else:
                fn(data, whens[got])
                got += 1
        return (time.process_time() - t0) / len(items) * 1e6

    def floor_decrypt(data: bytes, when: float) -> None:
        plain_key.decrypt(nonce_for(int.from_bytes(data[8:16], "big")), data[18:], data[:18])

    def nothing(data: bytes, when: float) -> None:
        pass

    ours = timed_batched if grx is not None else timed
    full, floor, floor_b, bare = [], [], [], []
    for b in range(0, len(datagrams) - batch + 1, batch):
        full.append(ours(datagrams[b : b + batch], handle))
        floor.append(timed(raw, floor_decrypt))
        if grx is not None:
            floor_b.append(timed_batched(raw, floor_decrypt))
        bare.append(timed(raw, nothing))
    t0 = time.process_time()
    n = batch * 4
    for i in range(n):
        tx.send(raw[i % batch][0])
        if i % batch == batch - 1:
            while True:
                try:
                    rx.recv(2048, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
    sendto_us = (time.process_time() - t0) / n * 1e6
    for sock in (tx, rx, gtx, grx):
        if sock is not None:
            sock.close()
    f_med = statistics.median(full)
    fl_med = statistics.median(floor)
    return {
        "datagram_bytes": len(datagrams[0][0]),
        "datagrams": len(full) * batch,
        "clock": "cpu",
        "batched_read": grx is not None,
        "full_us_p50": f_med,
        "full_us_min": min(full),
        "floor_us_p50": fl_med,
        "floor_batched_us_p50": statistics.median(floor_b) if floor_b else None,
        "bare_recvfrom_us_p50": statistics.median(bare),
        "bare_sendto_us": sendto_us,
        "ratio_to_floor": f_med / fl_med,
    }


def _bench_gso(rounds: int, run: int = 40, size: int = 1400) -> dict[str, Any]:
    """Sending one paced run of `run` equal datagrams: plain sendto each vs one GSO sendmsg.

    Median over `rounds` of the per-datagram send cost; the receiver is drained between rounds
    (not timed), so neither path ever meets a full buffer.
    """
    from wavry.net.gso import GsoSender, gso_supported

    tx, rx = _socket_pair()
    tx.setblocking(False)
    addr = rx.getsockname()
    datagrams = [os.urandom(size) for _ in range(run)]

    def plain(d: bytes, a: tuple[Any, ...]) -> None:
        tx.sendto(d, a)

    gso = GsoSender(tx, plain)

    def drain() -> None:
        while True:
            try:
                rx.recv(2048, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return

    plain_us, gso_us = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for d in datagrams:
            tx.sendto(d, addr)
        plain_us.append((time.perf_counter() - t0) / run * 1e6)
        drain()
        t0 = time.perf_counter()
        gso.send_run(datagrams, addr)
        gso_us.append((time.perf_counter() - t0) / run * 1e6)
        drain()
    tx.close()
    rx.close()
    p, g = statistics.median(plain_us), statistics.median(gso_us)
    return {
        "supported": gso_supported(),
        "run_datagrams": run,
        "datagram_bytes": size,
        "sendto_us_p50": p,
        "gso_us_p50": g,
        "speedup": p / g if g > 0 else None,
        "gso_calls": gso.gso_calls,
    }


def _bench_datagrams(batches: int, batch: int) -> dict[str, Any]:
    """The secure-session receive path: input datagrams arriving at the host."""
    client, host, _alias = _active_pair()
    addr = ("127.0.0.1", 9)

    def core(data: bytes, when: float) -> None:
        host.receive_datagram(data, addr, when)
        while host.next_event() is not None:
            pass

    result = _bench_path(_input_datagrams(client, batches * batch), core, batch)
    got = sum(s.channel.counters.received for s in host.sessions.values())
    assert got >= batches * batch, f"host accepted only {got} datagrams"
    return result


def _bench_media(frames: int, batch: int) -> dict[str, Any]:
    """The full media receive path at the client: FEC, NACK, feedback, assembly, jitter."""
    client, host, alias = _active_pair()
    datagrams = _video_datagrams(host, alias, frames)
    presented = [0]

    def core(data: bytes, when: float) -> None:
        client.receive_datagram(data, when)
        while (e := client.next_event()) is not None:
            if type(e).__name__ == "FrameReady":
                presented[0] += 1

    result = _bench_path(datagrams, core, batch, batched=True)
    assert presented[0] > 0, "no frame was assembled"
    result["frames_presented"] = presented[0]
    return result


def _bench_media_send(frames: int) -> dict[str, Any]:
    """The media send path at the host, per datagram that leaves (chunks and parities), CPU
    time: `send_frame` (chunking, sealing, resend history, FEC, congestion bookkeeping) and the
    adapter's GSO send of what it released; floor = bare ChaCha20-Poly1305 of the same bytes and
    a plain `sendto` each. Frames of ~11 kB at 60 fps on a clean path, with the FEC of a path
    that loses 2 % (the redundancy policy is told so by feedback reports)."""
    from wavry.net.gso import GsoSender

    _client, host, alias = _active_pair()
    transport = host.sessions[alias].transport
    media = transport.media
    # the policy's view of a 2 % random-loss path: two parities or so per frame
    rng = random.Random(1)
    decision = media.decision
    for r in range(100):
        report = [(i, None if rng.random() < 0.02 else 1.0) for i in range(r * 50 + 1, r * 50 + 51)]
        media.redundancy.on_feedback(report, decision, 1000.0 + r * 0.05)
    tx, rx = _socket_pair()
    tx.setblocking(False)
    addr = rx.getsockname()

    def plain(d: bytes, a: Any) -> None:
        tx.sendto(d, a)

    gso = GsoSender(tx, plain)
    sent: list[int] = []
    samples: list[float] = []
    t = 1010.0
    payload = os.urandom(11000)
    media.pacer.set_clean_path(0.03)
    for f in range(frames):
        t += 1 / 60
        t0 = time.process_time()
        host.send_frame(alias, payload, t, keyframe=f == 0, timestamp_us=int(t * 1e6))
        out = [d for d, _ in host.datagrams_to_send(t + 0.015)]
        gso.send_run(out, addr)
        cpu = time.process_time() - t0
        if f and out:
            samples.append(cpu / len(out) * 1e6)
            sent.extend(len(d) for d in out)
        while True:
            try:
                rx.recv(2048, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
    aead = ChaCha20Poly1305(os.urandom(32))
    blobs = [os.urandom(n - 34) for n in sent[:2000]]
    aad = bytes(18)
    floor: list[float] = []
    for start in range(0, len(blobs), 200):
        t0 = time.process_time()
        for i, b in enumerate(blobs[start : start + 200], start=1):
            tx.sendto(aad + aead.encrypt(nonce_for(i), b, aad), addr)
        floor.append((time.process_time() - t0) / len(blobs[start : start + 200]) * 1e6)
        while True:
            try:
                rx.recv(2048, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
    tx.close()
    rx.close()
    full, fl = statistics.median(samples), statistics.median(floor)
    stats = transport.stats
    return {
        "frames": frames,
        "datagrams": len(sent),
        "parity_per_frame": stats.parity_sent / max(1, stats.frames_sent),
        "full_us_p50": full,
        "floor_us_p50": fl,
        "ratio_to_floor": full / fl,
        "clock": "cpu",
    }


def run_transport_bench(quick: bool = False) -> dict[str, Any]:
    hs = _bench_handshakes(200 if quick else 1000)
    so = _bench_seal_open(5000 if quick else 30000)
    dg = _bench_datagrams(5 if quick else 20, 1000)
    media = _bench_media(300 if quick else 1200, 1000)
    send = _bench_media_send(300 if quick else 1200)
    gso = _bench_gso(200 if quick else 1000)
    targets = {
        "media_receive_le_3x_floor": media["ratio_to_floor"] <= 3.0,
        "media_send_le_3x_floor": send["ratio_to_floor"] <= 3.0,
        "handshakes_per_s_ge_500": hs["host_side_per_s"] >= 500,
        "per_datagram_le_15us": dg["full_us_p50"] <= 15.0,
        "per_datagram_le_3x_floor": dg["ratio_to_floor"] <= 3.0,
    }
    from wavry import native

    print_table(
        f"RIFT transport (one core; protocol core {native.label()})",
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
            [
                "  + media path: FEC/NACK/assembly (us CPU)",
                f"{media['full_us_p50']:.2f}",
                f"{media['floor_us_p50']:.2f}",
                f"{media['ratio_to_floor']:.2f}x",
            ],
            [
                "  (its floor read in GRO batches, us CPU)",
                "",
                _opt(media["floor_batched_us_p50"]),
                _ratio(media["full_us_p50"], media["floor_batched_us_p50"]),
            ],
            [
                "media send path: frame to wire, per datagram (us CPU)",
                f"{send['full_us_p50']:.2f}",
                f"{send['floor_us_p50']:.2f}",
                f"{send['ratio_to_floor']:.2f}x",
            ],
            ["bare recvfrom (us)", f"{dg['bare_recvfrom_us_p50']:.2f}", "", ""],
            ["bare sendto (us)", f"{dg['bare_sendto_us']:.2f}", "", ""],
            [
                f"sendto vs GSO per datagram (us, runs of {gso['run_datagrams']})",
                f"{gso['gso_us_p50']:.2f}" if gso["supported"] else "n/a",
                f"{gso['sendto_us_p50']:.2f}",
                f"{gso['speedup']:.2f}x faster" if gso["supported"] and gso["speedup"] else "",
            ],
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
        "media_datagram": media,
        "media_send": send,
        "gso": gso,
        "targets": targets,
    }
