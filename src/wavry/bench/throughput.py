"""`wavry bench throughput`: how fast the RIFT media path goes, next to a bare encrypt-and-send.

Per rate (20, 50, 100 and 200 Mbit/s; `--quick` runs shorter), in one run:

- ``wavry``: a real HostServer and ClientConnection, each in its own process, over loopback.
  The host hands pre-made synthetic frames (60 fps, ±20 % around rate/60: 1080p60/120-class
  sizes, a keyframe first) to the transport at a fixed target (no congestion control, so the
  rate is the one asked for) with Reed–Solomon FEC negotiated as usual: chunking, sealing,
  FEC, pacing, GSO sends; the client reads with UDP_GRO and runs FEC, NACK, feedback,
  assembly and the jitter buffer.
- ``bare``: the floor. One process encrypts the same frames' bytes in 1200-byte
  ChaCha20-Poly1305 datagrams and sends them (one ``sendto`` each, one frame per interval); a
  second reads and decrypts them. No framing, FEC, pacing, feedback or assembly.

Figures per side: CPU seconds per second of run (user + system of that process), and for the
receiver the delivered media rate and the share of frames presented on time (within one frame
interval of being handed to the transport; the bare receiver: decrypted whole within it).
Definitions and the issue's target (100 Mbit/s: ≥ 99.9 % on time, ≤ 0.5 core per side for the
transport): docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import socket
import struct
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wavry.bench.report import machine_facts, print_table
from wavry.percentile import percentile

RATES_MBIT = (20, 50, 100, 200)
FPS = 60
BARE_PAYLOAD = 1200
_HEADER = struct.Struct(">IIQd")  # frame id, chunk index, chunk count, sent wall time


# ---- wavry: host and client processes -------------------------------------------------------


def _wavry_variant(rate_mbit: int) -> Any:
    from wavry.bench.net_worker import Variant

    kbps = rate_mbit * 1000
    return Variant(
        f"throughput-{rate_mbit}",
        congestion_control=False,
        initial_kbps=kbps,
        ceiling_kbps=kbps,
        fps=FPS,
    )


async def _run_wavry(rate_mbit: int, duration: float) -> dict[str, Any]:
    v = _wavry_variant(rate_mbit)
    with tempfile.TemporaryDirectory(prefix="wavry-bench-tp-") as tmp:
        hfile, cfile = os.path.join(tmp, "host.json"), os.path.join(tmp, "client.json")
        common = ["--variant", json.dumps(asdict(v)), "--duration", str(duration)]
        worker = [sys.executable, "-m", "wavry.bench.net_worker"]
        host = await asyncio.create_subprocess_exec(
            *worker, "host", "--listen", "127.0.0.1", *common, "--out", hfile,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        client = None
        try:
            assert host.stdout is not None
            port = await _read_prefixed(host.stdout, "READY", 20)
            client = await asyncio.create_subprocess_exec(
                *worker, "client", "--connect", "127.0.0.1", "--port", port, *common,
                "--out", cfile, stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            rc_h = await asyncio.wait_for(host.wait(), duration + 40)
            rc_c = await asyncio.wait_for(client.wait(), 40)
            if rc_h or rc_c:
                raise RuntimeError(f"worker failed (host {rc_h}, client {rc_c})")
        finally:
            for proc in (host, client):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        hlog = json.loads(Path(hfile).read_text())
        clog = json.loads(Path(cfile).read_text())
    return _wavry_metrics(rate_mbit, hlog, clog)


async def _read_prefixed(stream: asyncio.StreamReader, prefix: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        line = (await asyncio.wait_for(stream.readline(), left)).decode()
        if not line:
            break
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"worker did not say {prefix!r} in {timeout:.0f} s")


def _wavry_metrics(rate_mbit: int, host: dict[str, Any], client: dict[str, Any]) -> dict[str, Any]:
    start, end = host["start"], host["end"]
    duration = max(1e-9, end - start)
    sent = {fid: ts for fid, ts, _, _ in host["frames"]}
    interval = 1 / FPS
    presented = [(fid, t, size) for fid, _, t, size in client["frames"] if fid in sent]
    on_time = sum(1 for fid, t, _ in presented if t - sent[fid] <= interval)
    # The opening keyframe is 8 P-frames' worth (1.7 MB at 100 Mbit/s). Whole within one
    # interval it would need 8x the stream's rate, so no pacer that respects the link delivers
    # it on time, and the frames handed over while it drains wait behind it. The steady figure
    # leaves out that frame and those handed over before it was presented.
    first = min(sent) if sent else None
    shown_at = {fid: t for fid, t, _ in presented}
    warm_until = shown_at.get(first, float("inf")) if first is not None else float("inf")
    steady = [fid for fid, ts in sent.items() if ts > warm_until]
    steady_on_time = sum(
        1 for fid in steady if fid in shown_at and shown_at[fid] - sent[fid] <= interval
    )
    lat = [(t - sent[fid]) * 1000 for fid, t, _ in presented]
    media = sum(size for _, _, size in presented)
    return {
        "system": "wavry",
        "rate_mbit": rate_mbit,
        "frames_sent": len(sent),
        "frames_presented": len(presented),
        "on_time_ratio": on_time / len(sent) if sent else None,
        "steady_frames": len(steady),
        "steady_on_time_ratio": steady_on_time / len(steady) if steady else None,
        "delivered_mbit_s": media * 8 / duration / 1e6,
        "latency_ms_p50": percentile(lat, 0.5),
        "latency_ms_p95": percentile(lat, 0.95),
        "jitter_buffer_ms_max": max(client.get("jitter_target_ms") or [0.0]),
        "sender_cpu_s_per_s": host["cpu_s"] / duration,
        # the client's CPU over its whole session (its idle start and end add little), per
        # second of the stream
        "receiver_cpu_s_per_s": client["cpu_s"] / duration,
        "datagrams_sent": host["stats"].get("datagrams_sent"),
        "parity_sent": host["stats"].get("parity_sent"),
        "retransmitted": host["stats"].get("retransmitted"),
        "fec_recovered": client["stats"].get("fec_recovered"),
        "frames_dropped_sender": host["stats"].get("frames_dropped_sender"),
        "frames_skipped_backlog": host.get("skipped_backlog"),
        "receiver_reads_per_datagram": (
            client["reads"] / client["datagrams"] if client.get("datagrams") else None
        ),
        "duration_s": duration,
    }


# ---- bare: encrypt and send, receive and decrypt --------------------------------------------


def _frame_sizes(rate_mbit: int, duration: float, seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    avg = rate_mbit * 1e6 / 8 / FPS
    return [max(200, int(avg * rng.uniform(0.8, 1.2))) for _ in range(int(duration * FPS))]


def _bare_sender(port: int, rate_mbit: int, duration: float, out: Any) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    aead = ChaCha20Poly1305(bytes(32))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.connect(("127.0.0.1", port))
    sizes = _frame_sizes(rate_mbit, duration)
    payload = os.urandom(BARE_PAYLOAD)
    pid = 0
    start = time.monotonic()
    cpu0 = time.process_time()
    for fid, size in enumerate(sizes):
        due = start + fid / FPS
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        count = -(-size // BARE_PAYLOAD)
        now = time.time()
        for i in range(count):
            pid += 1
            header = _HEADER.pack(fid, i, count, now)
            nonce = b"\0\0\0\0" + pid.to_bytes(8, "little")
            chunk = payload[: min(BARE_PAYLOAD, size - i * BARE_PAYLOAD)]
            body = aead.encrypt(nonce, chunk, header)
            with contextlib.suppress(OSError):  # a full buffer drops, as the product's does
                sock.send(header + nonce[4:] + body)
    out.put({"cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - start})
    sock.close()


def _bare_receiver(sock: socket.socket, duration: float, out: Any) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    aead = ChaCha20Poly1305(bytes(32))
    sock.settimeout(2.0)
    frames: dict[int, int] = {}
    on_time = done = media = 0
    cpu0 = time.process_time()
    t0 = time.monotonic()
    while True:
        try:
            data = sock.recv(2048)
        except TimeoutError:
            break
        header = data[: _HEADER.size]
        fid, _, count, sent = _HEADER.unpack(header)
        nonce = b"\0\0\0\0" + data[_HEADER.size : _HEADER.size + 8]
        plain = aead.decrypt(nonce, data[_HEADER.size + 8 :], header)
        media += len(plain)
        got = frames.get(fid, 0) + 1
        frames[fid] = got
        if got == count:
            done += 1
            if time.time() - sent <= 1 / FPS:
                on_time += 1
    wall = time.monotonic() - t0 - 2.0  # the final time-out is idle
    out.put(
        {
            "cpu_s": time.process_time() - cpu0,
            "wall_s": max(1e-9, wall),
            "frames_done": done,
            "frames_on_time": on_time,
            "media_bytes": media,
        }
    )


def _run_bare(rate_mbit: int, duration: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    q_rx, q_tx = ctx.Queue(), ctx.Queue()
    receiver = ctx.Process(target=_bare_receiver, args=(rx, duration, q_rx))
    receiver.start()
    rx.close()
    sender = ctx.Process(target=_bare_sender, args=(port, rate_mbit, duration, q_tx))
    sender.start()
    tx_res = q_tx.get(timeout=duration + 60)
    rx_res = q_rx.get(timeout=duration + 60)
    sender.join(10)
    receiver.join(10)
    frames = int(duration * FPS)
    return {
        "system": "bare",
        "rate_mbit": rate_mbit,
        "frames_sent": frames,
        "frames_presented": rx_res["frames_done"],
        "on_time_ratio": rx_res["frames_on_time"] / frames,
        "delivered_mbit_s": rx_res["media_bytes"] * 8 / tx_res["wall_s"] / 1e6,
        "sender_cpu_s_per_s": tx_res["cpu_s"] / tx_res["wall_s"],
        "receiver_cpu_s_per_s": rx_res["cpu_s"] / tx_res["wall_s"],
        "duration_s": tx_res["wall_s"],
    }


# ---- command -------------------------------------------------------------------------------


def run_throughput_bench(
    quick: bool = False,
    json_file: Path | None = None,
    rates: tuple[int, ...] = RATES_MBIT,
    duration_s: float | None = None,
) -> dict[str, Any]:
    from wavry.net.loop import run

    duration = duration_s if duration_s is not None else (5.0 if quick else 15.0)
    load0 = os.getloadavg()
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    for rate in rates:
        for system in ("wavry", "bare"):
            print(f"  running {system} at {rate} Mbit/s ({duration:.0f} s)...", flush=True)
            try:
                if system == "wavry":
                    results.append(run(_run_wavry(rate, duration)))
                else:
                    results.append(_run_bare(rate, duration))
            except Exception as exc:  # one failed cell is reported, the rest still runs
                notes.append(f"{system} at {rate} Mbit/s failed: {exc}")
                results.append({"system": system, "rate_mbit": rate, "note": str(exc)})

    def f(x: Any, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    rows = [
        [
            str(r["rate_mbit"]),
            r["system"],
            f(r.get("delivered_mbit_s"), ".1f"),
            f(r.get("on_time_ratio"), ".4f"),
            f(r.get("steady_on_time_ratio"), ".4f"),
            f(r.get("sender_cpu_s_per_s"), ".2f"),
            f(r.get("receiver_cpu_s_per_s"), ".2f"),
        ]
        for r in results
    ]
    load = os.getloadavg()
    print_table(
        f"RIFT media throughput on loopback ({duration:.0f} s per cell, 60 fps, RS FEC; "
        f"load {load0[0]:.1f} → {load[0]:.1f})",
        ["Mbit/s", "system", "delivered", "on time", "steady", "send CPU s/s", "recv CPU s/s"],
        rows,
    )
    for n in notes:
        print(f"  note: {n}")
    w100 = next((r for r in results if r["system"] == "wavry" and r["rate_mbit"] == 100), None)
    targets: dict[str, bool | None] = {"100mbit_on_time_ge_99.9_and_le_0.5_core_per_side": None}
    if w100 is not None and w100.get("steady_on_time_ratio") is not None:
        # on time counted after the opening keyframe (see _wavry_metrics: it cannot be)
        targets["100mbit_on_time_ge_99.9_and_le_0.5_core_per_side"] = bool(
            w100["steady_on_time_ratio"] >= 0.999
            and w100["sender_cpu_s_per_s"] <= 0.5
            and w100["receiver_cpu_s_per_s"] <= 0.5
        )
    for r in results:
        # CPU per second scaled to 100 Mbit/s delivered: a per-byte cost that a busy machine
        # (which gives each process a share of a core) distorts less than the raw figures
        delivered = r.get("delivered_mbit_s")
        for side in ("sender", "receiver"):
            cpu = r.get(f"{side}_cpu_s_per_s")
            r[f"{side}_cpu_s_per_100mbit"] = cpu * 100 / delivered if cpu and delivered else None
    for r in results:
        if r.get("sender_cpu_s_per_100mbit") is not None:
            print(
                f"  {r['system']} at {r['rate_mbit']} Mbit/s: CPU s/s per 100 Mbit/s delivered "
                f"send {r['sender_cpu_s_per_100mbit']:.2f}, "
                f"receive {r['receiver_cpu_s_per_100mbit']:.2f}"
            )
    for k, v in targets.items():
        print(f"  target {k}: {'-' if v is None else ('met' if v else 'MISSED')}")
    out: dict[str, Any] = {
        "bench": "throughput",
        "quick": quick,
        "machine": machine_facts(),
        "load_average": {"start": load0, "end": load},
        "duration_s": duration,
        "fps": FPS,
        "results": results,
        "targets": targets,
        "notes": notes,
    }
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        out["plots"] = _plot(json_file, results)
        json_file.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {json_file}")
    return out


def _plot(json_file: Path, results: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.4))
    for system, style in (("wavry", "o-"), ("bare", "s--")):
        rs = [r for r in results if r["system"] == system and "delivered_mbit_s" in r]
        xs = [r["rate_mbit"] for r in rs]
        a1.plot(xs, [r["delivered_mbit_s"] for r in rs], style, label=system)
        a2.plot(xs, [r["sender_cpu_s_per_s"] for r in rs], style, label=f"{system} send")
        a2.plot(
            xs, [r["receiver_cpu_s_per_s"] for r in rs], style, alpha=0.6, label=f"{system} recv"
        )
    a1.plot([min(RATES_MBIT), max(RATES_MBIT)], [min(RATES_MBIT), max(RATES_MBIT)], "k:", lw=0.8)
    a1.set_xlabel("asked Mbit/s")
    a1.set_ylabel("delivered media Mbit/s")
    a2.axhline(0.5, color="grey", linestyle=":", linewidth=0.8)
    a2.set_xlabel("asked Mbit/s")
    a2.set_ylabel("CPU s per s")
    for ax in (a1, a2):
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = json_file.with_suffix("").with_name(json_file.stem + "-throughput.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [str(path)]
