"""`wavry bench extras`: what a session carries besides pixels, each figure beside a baseline
measured in the same run (docs/benchmarks.md, "wavry bench extras").

Rows (``ROW_PRODUCERS``, in order):

* ``file-1gib``: a random file sent by a real ``wavry connect --headless --send-file`` to a real
  ``wavry host --source synthetic --file-out-dir`` over loopback while video streams. Transfer
  time and MB/s, a SHA-256 comparison of the received file, and the video's on-time ratio during
  the transfer beside the same session without a transfer (baseline phase, same host, a client
  that only watches). On-time is read by an observer session in this process (every frame's
  arrival − capture timestamp, one machine, one clock), as in ``bench net``.
* ``clipboard``: a change on one side visible on the other, through real host and client
  processes: X11 (two Xvfb displays) and, when sway runs, Wayland (client on a headless sway).
  Baseline: the same clipboard write/read on one display, without the network.
* ``audio``: filled by ``wavry.bench.extras_audio.run_audio_latency`` when that module exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavry.bench.report import machine_facts, print_table
from wavry.percentile import percentile
from wavry.runtime.processes import WavryProcess, running_host, wavry_env

FILE_TARGET_S = 120.0
ON_TIME_TARGET = 0.99
CLIPBOARD_TARGET_MS = 200.0
GIB = 1 << 30


@dataclass(slots=True)
class ExtrasOptions:
    quick: bool = False
    file_bytes: int = GIB  # --quick: 256 MiB
    baseline_s: float = 15.0  # video-only phase before the transfer
    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate_kbps: int = 8000
    clipboard_changes: int = 40
    audio_seconds: float = 10.0
    wayland: bool = True
    rows: tuple[str, ...] = ("file-1gib", "clipboard", "audio")

    @classmethod
    def for_run(cls, quick: bool) -> ExtrasOptions:
        if quick:
            return cls(quick=True, file_bytes=256 << 20, baseline_s=8.0, clipboard_changes=20)
        return cls()


# ---- helpers ---------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    p = percentile(values, q)
    return None if p is None else round(p, 3)


def make_random_file(path: Path, size: int) -> str:
    """``size`` random bytes (16 MiB blocks); returns the SHA-256 hex digest."""
    digest = hashlib.sha256()
    block = 16 << 20
    with path.open("wb") as f:
        left = size
        while left > 0:
            data = os.urandom(min(block, left))
            f.write(data)
            digest.update(data)
            left -= len(data)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---- file-1gib ---------------------------------------------------------------------------------


class _Observer:
    """A watching session in this process: per frame id, arrival time − capture timestamp."""

    def __init__(self, port: int, config_dir: Path) -> None:
        self.port = port
        self.config_dir = config_dir
        self.frames: list[tuple[float, int, float]] = []  # (arrival, frame id, latency ms)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _Observer:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError(f"observer session did not start: {self._error!r}")
        if self._error is not None:
            raise RuntimeError(f"observer session failed: {self._error!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()/window()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from wavry.rift import rift_pb2
        from wavry.rift.config import ClientConfig
        from wavry.rift.transport import FrameReady
        from wavry.runtime.session import establish

        config = ClientConfig(name="bench-observer", supported_codecs=[rift_pb2.H264])
        est = await establish("127.0.0.1", self.port, config, config_dir=self.config_dir)
        self._ready.set()
        try:
            while not self._stop.is_set():
                try:
                    e = await est.conn.next_event(0.2)
                except TimeoutError:
                    continue
                if isinstance(e, FrameReady):
                    now = time.time()
                    f = e.frame
                    self.frames.append((now, f.frame_id, (now - f.timestamp_us / 1e6) * 1000))
        finally:
            await est.conn.close("bench done")

    def window(self, start: float, end: float) -> list[tuple[float, int, float]]:
        return [f for f in self.frames if start <= f[0] <= end]


def on_time(frames: list[tuple[float, int, float]], deadline_ms: float) -> dict[str, Any]:
    """Frames arrived no later than ``deadline_ms`` after capture, over frames *sent* in the
    window (frame ids are consecutive per session: a missing id is a lost or dropped frame)."""
    if not frames:
        return {"on_time_ratio": None, "frames_sent": 0, "frames_arrived": 0}
    ids = [f[1] for f in frames]
    sent = max(ids) - min(ids) + 1
    good = sum(1 for f in frames if f[2] <= deadline_ms)
    lat = [f[2] for f in frames]
    return {
        "on_time_ratio": round(good / sent, 5),
        "frames_sent": sent,
        "frames_arrived": len(frames),
        "frames_late": len(frames) - good,
        "frames_missing": sent - len(set(ids)),
        "latency_ms": {"p50": _pct(lat, 0.5), "p95": _pct(lat, 0.95), "p99": _pct(lat, 0.99),
                       "max": round(max(lat), 3)},
    }  # fmt: skip


def run_file_row(opts: ExtrasOptions) -> dict[str, Any]:
    size = opts.file_bytes
    row: dict[str, Any] = {
        "name": "file-1gib",
        "file_bytes": size,
        "video": f"synthetic {opts.width}x{opts.height}@{opts.fps}, {opts.bitrate_kbps} kbit/s",
    }
    with tempfile.TemporaryDirectory(prefix="wavry-bench-extras-") as tmp_s:
        tmp = Path(tmp_s)
        src = tmp / "payload.bin"
        t0 = time.monotonic()
        src_sha = make_random_file(src, size)
        row["generate_s"] = round(time.monotonic() - t0, 2)
        out_dir = tmp / "received"
        host_args = ["--source", "synthetic", "--size", f"{opts.width}x{opts.height}",
                     "--fps", str(opts.fps), "--bitrate-kbps", str(opts.bitrate_kbps),
                     "--file-out-dir", str(out_dir)]  # fmt: skip
        with running_host([*host_args, "--trust", "any"], wavry_env(tmp / "h")) as host:
            port = host.port
            observer = _Observer(port, tmp / "o").start()
            try:
                # baseline: the same session shape (host, observer, one `wavry connect`), no file
                s0 = tmp / "baseline-stats.json"
                p0 = WavryProcess(["connect", f"127.0.0.1:{port}", "--headless",
                               "--seconds", str(opts.baseline_s), "--stats-json", str(s0)],
                              wavry_env(tmp / "c0"))  # fmt: skip
                if p0.wait_line(r"^connected to", 20) is None:
                    raise RuntimeError("baseline client did not connect: " + p0.text()[-1500:])
                b_start = time.time() + 1.0  # past the first keyframe
                p0.proc.wait(opts.baseline_s + 30)
                b_end = time.time() - 0.3
                p0.stop()
                # the transfer
                s1 = tmp / "transfer-stats.json"
                p1 = WavryProcess(["connect", f"127.0.0.1:{port}", "--headless",
                               "--send-file", str(src), "--stats-json", str(s1),
                               "--file-out-dir", str(tmp / "c1-in")],
                              wavry_env(tmp / "c1"))  # fmt: skip
                limit = max(600.0, size / 1e6 * 2)
                try:
                    p1.proc.wait(limit)
                except subprocess.TimeoutExpired:
                    p1.stop()
                    raise RuntimeError(f"transfer did not finish in {limit:.0f} s") from None
                p1.stop()
            finally:
                observer.stop()
        t_offer = p1.first_time(r"^offering payload\.bin")
        t_done = p1.first_time(r"^sent payload\.bin: 100 %")
        received = out_dir / "payload.bin"
        ok = p1.proc.returncode == 0 and t_offer is not None and t_done is not None
        row["client_exit"] = p1.proc.returncode
        if not ok:
            row["error"] = "transfer failed: " + p1.text()[-1500:]
        transfer_s = (t_done - t_offer) if ok and t_offer and t_done else None
        row["transfer_s"] = round(transfer_s, 2) if transfer_s else None
        row["mb_per_s"] = round(size / 1e6 / transfer_s, 2) if transfer_s else None
        row["sha256_match"] = received.exists() and _sha256(received) == src_sha
        base = observer.window(b_start, b_end)
        lat0 = [f[2] for f in base]
        base_p50 = statistics.median(lat0) if lat0 else None
        if base_p50 is not None and transfer_s and t_offer and t_done:
            deadline = base_p50 + 1000 / opts.fps
            row["on_time_deadline_ms"] = round(deadline, 3)
            row["baseline"] = on_time(base, deadline)
            row["during_transfer"] = on_time(observer.window(t_offer, t_done), deadline)
        for key, path in (("baseline_client_stats", s0), ("transfer_client_stats", s1)):
            with contextlib.suppress(OSError, ValueError):
                stats = json.loads(path.read_text())
                row[key] = {k: stats.get(k) for k in ("frames_presented", "frames_dropped",
                                                      "e2e_latency_ms")}  # fmt: skip
        lines = [line for _, line in p1.lines if line.startswith("sending payload.bin")]
        row["progress_lines"] = len(lines)
        rx = r"(\d+) back-offs; signs: (\d+) bitrate cuts, (\d+) RTT, (\d+) gaps"
        if lines and (m := re.search(rx, lines[-1])):
            row["rate_backoffs"] = int(m.group(1))
            row["congestion_signs"] = {
                "host_bitrate_cuts": int(m.group(2)),
                "rtt_growth": int(m.group(3)),
                "receiver_gaps": int(m.group(4)),
            }
        limits = [float(m.group(1)) for ln in lines if (m := re.search(r"limit ([\d.]+) MB/s", ln))]
        if limits:
            row["rate_limit_mb_s"] = {"median": statistics.median(limits), "max": max(limits)}
        row["host_received"] = "received payload.bin" in host.text()
    during = (row.get("during_transfer") or {}).get("on_time_ratio")
    secs = row["transfer_s"]
    row["targets"] = {
        "transfer_under_120_s": None if secs is None else secs < FILE_TARGET_S,
        "on_time_at_least_99_pct": None if during is None else during >= ON_TIME_TARGET,
        "byte_identical": row["sha256_match"],
    }  # fmt: skip
    if size != GIB:
        row["note"] = f"{size} bytes, not 1 GiB (--quick or a smoke run): not the issue's target"
    return row


# ---- clipboard ---------------------------------------------------------------------------------


def _wait_for(seen: list[tuple[float, str]], text: str, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for when, t in seen:
            if t == text:
                return when
        time.sleep(0.001)
    return None


def _measure(
    writer: Any, seen: list[tuple[float, str]], n: int, tag: str, timeout: float = 3.0
) -> dict[str, Any]:
    """``n`` changes set through ``writer.set_remote_text`` (an independent clipboard client on
    the source side); each must show up in ``seen`` (the destination side's watcher)."""
    lat: list[float] = []
    missed = 0
    for i in range(n):
        text = f"wavry bench {tag} change {i} {os.urandom(6).hex()}"
        t0 = time.monotonic()
        if not writer.set_remote_text(text):
            missed += 1
            continue
        when = _wait_for(seen, text, timeout)
        if when is None:
            missed += 1
        else:
            lat.append((when - t0) * 1000)
        time.sleep(0.05)
    return {"changes": n, "seen": len(lat), "missed": missed, "p50_ms": _pct(lat, 0.5),
            "p95_ms": _pct(lat, 0.95), "max_ms": round(max(lat), 3) if lat else None}  # fmt: skip


def _x_sync(server: Any, seen: list[tuple[float, str]]) -> Any:
    from wavry.platform.clipboard import ClipboardSync

    return ClipboardSync(lambda t: seen.append((time.monotonic(), t)), server.display,
                         str(server.auth_file)).start()  # fmt: skip


def _wl_sync(sway: Any, seen: list[tuple[float, str]]) -> Any:
    from wavry.platform.wlclipboard import WlClipboardSync

    return WlClipboardSync(lambda t: seen.append((time.monotonic(), t)), sway.wayland_display,
                           sway.runtime_dir).start()  # fmt: skip


def _clipboard_session(
    tmp: Path, a: Any, client_env: dict[str, str], n: int, b_writer: Callable[..., Any],
    b_sync: Any, label: str,
) -> dict[str, Any]:  # fmt: skip
    """Host on Xvfb ``a`` (x11 source), a windowed `wavry connect` in ``client_env``; measures
    host→client and client→host over ``n`` changes each."""
    out: dict[str, Any] = {}
    host_home = wavry_env(tmp / f"h-{label}", a.env())
    with running_host(["--trust", "any", "--source", "x11", "--display", a.display,
                       "--fps", "30"], host_home) as host:  # fmt: skip
        port = host.port
        client = WavryProcess(["connect", f"127.0.0.1:{port}", "--seconds", "600"],
                          wavry_env(tmp / f"c-{label}", client_env))  # fmt: skip
        try:
            if client.wait_line(r"clipboard sync on", 30) is None:
                raise RuntimeError(f"client clipboard did not start: {client.text()[-1500:]}")
            if host.wait_line(r"clipboard sync on", 20) is None:
                raise RuntimeError(f"host clipboard did not start: {host.text()[-1500:]}")
            time.sleep(1.0)
            seen_a: list[tuple[float, str]] = []
            seen_b: list[tuple[float, str]] = []
            on_a = _x_sync(a, seen_a)
            on_b = b_sync(seen_b)
            try:
                time.sleep(0.5)
                out["host_to_client"] = _measure(on_a, seen_b, n, f"{label} h2c")
                out["client_to_host"] = _measure(on_b, seen_a, n, f"{label} c2h")
            finally:
                on_a.close()
                on_b.close()
        finally:
            client.stop()
    return out


def _baseline(make: Callable[[list[tuple[float, str]]], Any], n: int, tag: str) -> dict[str, Any]:
    seen: list[tuple[float, str]] = []
    sink: list[tuple[float, str]] = []
    writer = make(sink)
    watcher = make(seen)
    try:
        time.sleep(0.3)
        return _measure(writer, seen, n, tag)
    finally:
        writer.close()
        watcher.close()


def run_clipboard_row(opts: ExtrasOptions) -> dict[str, Any]:
    from wavry.platform.xvfb import XvfbServer

    n = opts.clipboard_changes
    row: dict[str, Any] = {"name": "clipboard", "changes_per_direction": n}
    if shutil.which("Xvfb") is None:
        row["error"] = "Xvfb is not installed"
        return row
    with tempfile.TemporaryDirectory(prefix="wavry-bench-clip-") as tmp_s:
        tmp = Path(tmp_s)
        a = XvfbServer(640, 480).start()
        b = XvfbServer(640, 480).start()
        try:
            x11_env = dict(b.env(), SDL_VIDEODRIVER="x11")
            x11_env.pop("WAYLAND_DISPLAY", None)
            row["x11"] = _clipboard_session(tmp, a, x11_env, n, _x_sync,
                                            lambda seen: _x_sync(b, seen), "x11")  # fmt: skip
            row["x11"]["baseline_one_display"] = _baseline(lambda s: _x_sync(b, s), n, "x11 base")
            if opts.wayland:
                row["wayland"] = _wayland_part(tmp, a, n)
        finally:
            a.stop()
            b.stop()
    x = row.get("x11", {})
    worst = [x.get(k, {}).get("p50_ms") for k in ("host_to_client", "client_to_host")]
    row["targets"] = {
        "x11_p50_at_most_200_ms": None if None in worst else max(worst) <= CLIPBOARD_TARGET_MS,
    }
    w = row.get("wayland", {})
    wworst = [w.get(k, {}).get("p50_ms") for k in ("host_to_client", "client_to_host")]
    if w and None not in wworst:
        row["targets"]["wayland_p50_at_most_200_ms"] = max(wworst) <= CLIPBOARD_TARGET_MS
    return row


def _wayland_part(tmp: Path, a: Any, n: int) -> dict[str, Any]:
    from wavry.testing.sway import HeadlessSway, SwayError

    try:
        sway = HeadlessSway().start()
    except SwayError as exc:
        return {"skipped": str(exc)}
    try:
        # the client window on the sway session itself is not needed for the clipboard; SDL's
        # offscreen driver gives the client its window without a GPU
        env = dict(sway.env(), SDL_VIDEODRIVER="offscreen")
        env.pop("DISPLAY", None)
        part = _clipboard_session(tmp, a, env, n, _wl_sync, lambda seen: _wl_sync(sway, seen),
                                  "wayland")  # fmt: skip
        part["baseline_one_display"] = _baseline(lambda s: _wl_sync(sway, s), n, "wl base")
        part["client_backend"] = "wl-clipboard (wl-paste --watch) on headless sway"
        return part
    finally:
        sway.stop()


# ---- audio -------------------------------------------------------------------------------------


def run_audio_row(opts: ExtrasOptions) -> dict[str, Any]:
    try:
        from wavry.bench.extras_audio import run_audio_latency
    except ImportError:
        return {"name": "audio", "skipped": "wavry.bench.extras_audio is not available"}
    row = dict(run_audio_latency(opts.audio_seconds))
    row.setdefault("name", "audio")
    return row


RowProducer = Callable[[ExtrasOptions], dict[str, Any]]
#: every row of the bench, in order; add a producer here to add a row
ROW_PRODUCERS: list[tuple[str, RowProducer]] = [
    ("file-1gib", run_file_row),
    ("clipboard", run_clipboard_row),
    ("audio", run_audio_row),
]


def run_extras(opts: ExtrasOptions) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "bench": "extras",
        "quick": opts.quick,
        "machine": machine_facts(),
        "load_before": os.getloadavg(),
        "rows": {},
    }
    for name, producer in ROW_PRODUCERS:
        if name not in opts.rows:
            continue
        t0 = time.monotonic()
        try:
            row = producer(opts)
        except Exception as exc:  # one row failing must not lose the others
            row = {"name": name, "error": f"{type(exc).__name__}: {exc}"}
        row["elapsed_s"] = round(time.monotonic() - t0, 1)
        doc["rows"][name] = row
    doc["load_after"] = os.getloadavg()
    return doc


def _f(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}{unit}" if abs(v) < 1000 else f"{v:.0f}{unit}"
    return f"{v}{unit}"


def table_rows(doc: dict[str, Any]) -> list[list[str]]:
    out: list[list[str]] = []
    rows = doc["rows"]
    f = rows.get("file-1gib")
    if f:
        mb = f.get("file_bytes", 0) / 1e6
        out.append([f"file {mb:.0f} MB: time", _f(f.get("transfer_s"), " s"), "target < 120 s"])
        out.append(["file: throughput", _f(f.get("mb_per_s"), " MB/s"), "-"])
        out.append(["file: SHA-256 identical", _f(f.get("sha256_match")), "-"])
        dur = (f.get("during_transfer") or {}).get("on_time_ratio")
        base = (f.get("baseline") or {}).get("on_time_ratio")
        out.append(["video on time during transfer", _f(dur), f"no transfer: {_f(base)}"])
        if "error" in f:
            out.append(["file: error", f["error"][:80], ""])
    c = rows.get("clipboard")
    if c:
        for backend in ("x11", "wayland"):
            part = c.get(backend)
            if not part:
                continue
            if "skipped" in part:
                out.append([f"clipboard {backend}", "skipped", part["skipped"][:60]])
                continue
            base = part.get("baseline_one_display", {})
            for d in ("host_to_client", "client_to_host"):
                r = part.get(d, {})
                out.append([
                    f"clipboard {backend} {d.replace('_', ' ')} p50/p95",
                    f"{_f(r.get('p50_ms'))}/{_f(r.get('p95_ms'))} ms (missed {r.get('missed')})",
                    f"one display: {_f(base.get('p50_ms'))}/{_f(base.get('p95_ms'))} ms",
                ])  # fmt: skip
        if "error" in c:
            out.append(["clipboard: error", c["error"][:80], ""])
    a = rows.get("audio")
    if a:
        if "skipped" in a or "error" in a:
            out.append(["audio", "skipped", str(a.get("skipped") or a.get("error"))[:60]])
        else:
            w, base = a.get("wavry") or {}, a.get("baseline") or {}
            out.append([
                f"audio host out -> client out p50/p95 ({a.get('frame_ms')} ms frames)",
                f"{_f(w.get('p50_ms'))}/{_f(w.get('p95_ms'))} ms ({w.get('count')} bursts)",
                f"PipeWire alone: {_f(base.get('p50_ms'))}/{_f(base.get('p95_ms'))} ms; "
                f"target p50 <= {_f(a.get('target_p50_ms'))} ms",
            ])  # fmt: skip
    return out


def run_extras_command(
    quick: bool, json_file: Path | None, opts: ExtrasOptions | None = None
) -> dict[str, Any]:
    opts = opts or ExtrasOptions.for_run(quick)
    doc = run_extras(opts)
    print_table("wavry bench extras", ["figure", "measured", "baseline / target"], table_rows(doc))
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(doc, indent=2) + "\n")
    return doc
