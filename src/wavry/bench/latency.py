"""`wavry bench latency`: glass-to-glass latency read back from the synthetic marker.

Every frame of the synthetic source carries its capture timestamp (host wall clock, µs) in
pixels (:mod:`wavry.media.marker`). A receiver reads it from the *decoded* picture, so
latency = (wall clock when the decoded picture is ready to present) − (marker timestamp), on one
machine and one clock. Per resolution, in the same run and one after another:

- ``floor``: the same frames (SyntheticCapture, paced, same noise) encoded with wavry's Encoder
  and decoded with its Decoder in one thread of one process, no transport;
- ``wavry``: a real ``wavry host --source synthetic`` subprocess and an in-process client on
  loopback over RIFT: the product's :class:`ClientRuntime` (headless: decode thread, stats;
  headless, so "presented" = decoded and accounted), the marker read from the decoded picture;
- ``windowed``: the same host, but a real ``wavry connect`` process showing the stream in its
  window on a private Xvfb display; the marker is read from the screen by the grabber of `wavry
  bench peers` (see :mod:`wavry.bench.latency_windowed`): what a person sees;
- ``aiortc``: two RTCPeerConnections over the host's interfaces, H.264 forced, same source and
  encoder settings (see :mod:`wavry.bench.latency_aiortc`);
- ``browser``: the browser client in headless Chromium against ``wavry host --web`` over
  WebTransport, the marker read in the page (see :mod:`wavry.bench.latency_browser`); target:
  p50 within 3 ms of ``wavry``.

"Frames queued behind a newer one": a frame presented with a marker id not above the previous
one (out of order), or (wavry) a frame whose decoding started after a newer frame had already
arrived complete (its last chunk), i.e. it waited in line behind a newer picture.

CPU: host = the host subprocess's utime+stime from /proc/<pid>/stat over the measured window;
client = this process's ``time.process_time()`` over the same window (the client is all that
runs in it then). aiortc runs both peers in one process: its figure is sender + receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from wavry.bench.latency_report import print_results, targets, write_cdf_plot
from wavry.bench.report import machine_facts
from wavry.media.decode import Decoder
from wavry.media.encode import Encoder
from wavry.media.marker import read_marker
from wavry.media.synthetic import SyntheticCapture
from wavry.net.loop import run as run_loop
from wavry.percentile import percentile
from wavry.runtime.processes import HostProcess, WavryProcess, start_host, wavry_env

__all__ = [
    "DEFAULT_RESOLUTIONS",
    "LatencyCollector",
    "bench_latency_command",
    "run_latency_bench",
]

DEFAULT_RESOLUTIONS: list[tuple[int, int, int]] = [(1280, 720, 60), (1920, 1080, 30)]
BITRATE_KBPS = {(1280, 720): 8000, (1920, 1080): 12000}
NOISE = 12  # the noise `wavry host --source synthetic` uses (runtime/sources.py)


def _pct(values: list[float], q: float) -> float | None:
    return percentile(values, q)


@dataclass
class LatencyCollector:
    """Marker-based latency samples of one variant, with ordering checks."""

    latencies_ms: list[float] = field(default_factory=list)
    unreadable: int = 0
    out_of_order: int = 0
    first_id: int | None = None
    last_id: int | None = None
    t_first: float | None = None
    t_last: float | None = None

    def record(self, image: Any, now_us: int) -> int | None:
        """Read the marker of a decoded picture ready at ``now_us``; returns its frame id."""
        mark = read_marker(image)
        if mark is None:
            self.unreadable += 1
            return None
        frame_id, ts_us = mark
        if self.last_id is not None and frame_id <= self.last_id:
            self.out_of_order += 1
        else:
            self.last_id = frame_id
        if self.first_id is None:
            self.first_id = frame_id
        self.latencies_ms.append((now_us - ts_us) / 1000.0)
        t = now_us / 1e6
        self.t_first = t if self.t_first is None else self.t_first
        self.t_last = t
        return frame_id

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        n = len(lat)
        span = n
        if self.last_id is not None and self.first_id is not None:
            span = self.last_id - self.first_id + 1
        dur = 0.0
        if self.t_first is not None and self.t_last is not None:
            dur = self.t_last - self.t_first
        return {
            "frames": n,
            "fps": (n - 1) / dur if dur > 0 else None,
            "p50_ms": _pct(lat, 0.50),
            "p95_ms": _pct(lat, 0.95),
            "p99_ms": _pct(lat, 0.99),
            "min_ms": min(lat) if lat else None,
            "max_ms": max(lat) if lat else None,
            "mean_ms": sum(lat) / n if n else None,
            "unreadable_markers": self.unreadable,
            "out_of_order": self.out_of_order,
            "frames_not_presented": max(0, span - n),
        }


# ---- (a) codec floor ------------------------------------------------------------------------


def _run_floor(
    w: int, h: int, fps: int, kbps: int, warmup_s: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    cap = SyntheticCapture(w, h, fps, noise=NOISE)
    enc = Encoder("h264", w, h, fps, kbps)
    dec = Decoder("h264")
    col = LatencyCollector()
    cap.start()
    encode_ms: list[float] = []
    decode_ms: list[float] = []
    nbytes = 0
    t_start = time.monotonic()
    t_measure = t_start + warmup_s
    cpu0 = wall0 = None
    while True:
        now = time.monotonic()
        if now >= t_measure + seconds:
            break
        frame = cap.grab()
        encoded = enc.encode(frame.image)
        decoded = dec.decode(encoded.data)
        now_us = time.time_ns() // 1000
        if decoded is None:
            continue
        if now >= t_measure:
            if cpu0 is None:
                cpu0, wall0 = time.process_time(), time.monotonic()
            col.record(decoded.frame, now_us)
            encode_ms.append(encoded.encode_us / 1000)
            nbytes += len(encoded.data)
            decode_ms.append(decoded.decode_us / 1000)
    cap.stop()
    cpu = None
    if cpu0 is not None and wall0 is not None:
        cpu = (time.process_time() - cpu0) / max(1e-9, time.monotonic() - wall0)
    out = col.summary()
    out["cpu_cores"] = cpu
    out["bitrate_kbps"] = nbytes * 8 / 1000 / seconds
    out["encode_ms_p50"] = _pct(encode_ms, 0.5)
    out["decode_ms_p50"] = _pct(decode_ms, 0.5)
    out["queued_behind_newer"] = out["out_of_order"]
    return out, col.latencies_ms


# ---- (b) wavry over RIFT on loopback --------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _udp_drops(port: int) -> dict[str, int]:
    """Kernel receive-buffer drops of loopback UDP sockets bound to / connected to ``port``
    (the ``drops`` column of /proc/net/udp): ``host`` = local port, ``client`` = remote port."""
    out = {"host": 0, "client": 0}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            f = line.split()
            local_port, remote_port = int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)
            if local_port == port:
                out["host"] += int(f[-1])
            elif remote_port == port:
                out["client"] += int(f[-1])
    return out


def _synthetic_host(w: int, h: int, fps: int, kbps: int, config_home: Path) -> HostProcess:
    """`wavry host --source synthetic` in a subprocess with its own config directory, started
    (banner read); the same bitrate as the floor and aiortc: DELTA may lower it, never raise it
    above."""
    args = ["--source", "synthetic", "--size", f"{w}x{h}", "--fps", str(fps)]
    args += ["--bitrate-kbps", str(kbps), "--max-bitrate-kbps", str(kbps), "--trust", "any"]
    return start_host(args, wavry_env(config_home), merge=False)


async def _wavry_client(
    host: WavryProcess,
    addr: tuple[str, int],
    config_dir: Path,
    warmup_s: float,
    seconds: float,
) -> tuple[dict[str, Any], LatencyCollector]:
    from wavry.client.pipeline import ReadyFrame
    from wavry.client.runtime import ClientCallbacks, ClientRuntime
    from wavry.runtime.connect import ConnectOptions

    col = LatencyCollector()
    # (rift frame id, last chunk arrival, decode start) per shown frame, for the
    # "queued behind a newer one" check.
    order: list[tuple[int, float, float]] = []
    # Per-frame stage split (ms; one machine, one clock): host capture+encode (durations the
    # host reports), host hand-off → first chunk on the client, chunk spread (first → last
    # chunk: pacing), last chunk → decode start (jitter buffer, hand-off, decode queue),
    # decode → shown (decode, picture hand-off), and the last split in two: the decode call
    # itself, and decoded → shown (the decode thread's hand-off to the loop).
    stages: dict[str, list[float]] = {k: [] for k in _STAGES}
    measuring = False
    diag: dict[str, Any] = {
        "keyframes": 0,
        "frame_id_gaps": 0,
        "unreadable_after_gap_without_keyframe": 0,
        "rate_target_min_kbps": None,
        "rate_target_max_kbps": None,
    }
    last_fid: list[int | None] = [None]
    gap = [False]
    rt: ClientRuntime | None = None

    def shown(ready: ReadyFrame, shown_wall: float) -> None:  # the product's decode path
        now_us = int(shown_wall * 1e6)
        if not measuring or rt is None:
            return
        f = ready.job.frame
        diag["keyframes"] += int(f.keyframe)
        if last_fid[0] is not None and f.frame_id != last_fid[0] + 1:
            diag["frame_id_gaps"] += 1
            gap[0] = not f.keyframe
        elif f.keyframe:
            gap[0] = False
        last_fid[0] = f.frame_id
        target = rt.stats.bitrate_target_kbps
        if target is not None:
            diag["rate_target_min_kbps"] = min(diag["rate_target_min_kbps"] or target, target)
            diag["rate_target_max_kbps"] = max(diag["rate_target_max_kbps"] or 0, target)
        if col.record(ready.decoded.frame, now_us) is None:
            diag["unreadable_after_gap_without_keyframe"] += int(gap[0])
            return
        # the session core and the decode thread run on monotonic clocks: everything as wall
        # clock, to compare with the capture timestamp
        assert rt.est is not None
        first_at = rt.est.conn.wall_time(f.first_chunk_at)
        last_at = rt.est.conn.wall_time(f.last_chunk_at)
        # both clocks read together: their offset (the wall time `shown_wall` was read while
        # the frame was taken, earlier than this callback, so `shown_wall - monotonic()` here
        # would shift every monotonic stage by the time in between)
        mono_to_wall = time.time() - time.monotonic()
        started = ready.decode_start + mono_to_wall
        decoded_at = ready.decode_end + mono_to_wall
        order.append((f.frame_id, last_at, started))
        ts = f.timestamp_us / 1e6
        encoded_at = ts + (f.capture_us + f.encode_us) / 1e6
        for k, v in zip(
            _STAGES,
            (
                (f.capture_us + f.encode_us) / 1e3,
                (first_at - encoded_at) * 1e3,
                (last_at - first_at) * 1e3,
                (started - last_at) * 1e3,
                (shown_wall - started) * 1e3,
                (decoded_at - started) * 1e3,
                (shown_wall - decoded_at) * 1e3,
            ),
            strict=True,
        ):
            stages[k].append(v)

    opts = ConnectOptions(
        host=addr[0], port=addr[1], headless=True, config_dir=config_dir, timeout=15
    )
    rt = ClientRuntime(opts, ClientCallbacks(say=lambda _t: None, on_frame_shown=shown))
    task = asyncio.create_task(rt.run())
    try:
        await asyncio.sleep(warmup_s)
        measuring = True
        drops0 = _udp_drops(addr[1])
        cpu0, host0, wall0 = time.process_time(), _proc_cpu_s(host.pid), time.monotonic()
        await asyncio.sleep(seconds)
        measuring = False
        wall = time.monotonic() - wall0
        client_cpu = (time.process_time() - cpu0) / wall
        host_cpu = (_proc_cpu_s(host.pid) - host0) / wall
        drops1 = _udp_drops(addr[1])
    finally:
        rt.stop()
    summary = (await task).summary
    tr = rt.est.session.transport if rt.est is not None else None
    out = col.summary()
    out["queued_behind_newer"] = out["out_of_order"] + _stale_count(order)
    out["stale_presented"] = _stale_count(order)
    out["cpu_host_cores"] = host_cpu
    out["cpu_client_cores"] = client_cpu
    out["stages_ms"] = {k: {"p50": _pct(v, 0.5), "p95": _pct(v, 0.95)} for k, v in stages.items()}
    out["client_stats_stage_means_ms"] = summary["stages_ms"]
    out["client_e2e_ms"] = summary["e2e_latency_ms"]
    out["client_frames_dropped"] = summary["frames_dropped"]
    out["bitrate_kbps"] = summary["bitrate_kbps"]
    diag["socket_rcvbuf_drops"] = {k: drops1[k] - drops0[k] for k in drops0}
    out["receive_diagnostics"] = diag
    if tr is not None:
        out["jitter_buffer_delay_ms_at_end"] = tr.jitter.delay_ms
        st = tr.stats
        out["client_transport"] = {
            "nacks_sent": st.nacks_sent,
            "nacked_ids": st.nacked_ids,
            "fec_recovered": st.fec_recovered,
            "frames_completed": st.frames_completed,
            "jitter_buffer_dropped_late": getattr(tr.jitter, "dropped_late", None),
        }
    return out, col


_STAGES = (
    "host_capture_encode",
    "encoded_to_first_chunk",
    "chunk_spread",
    "last_chunk_to_decode",
    "decode_to_shown",
    "decode",
    "decoded_to_shown",
)


def _stale_count(order: list[tuple[int, float, float]]) -> int:
    """Frames whose decoding started after a newer frame had fully arrived."""
    stale = 0
    newest_arrival = float("inf")  # earliest last-chunk time among frames with a higher id
    for frame_id, arrived, started in sorted(order, key=lambda r: -r[0]):
        del frame_id
        if newest_arrival < started:
            stale += 1
        newest_arrival = min(newest_arrival, arrived)
    return stale


def _run_wavry(
    w: int, h: int, fps: int, kbps: int, warmup_s: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    with tempfile.TemporaryDirectory(prefix="wavry-bench-") as tmp:
        host = _synthetic_host(w, h, fps, kbps, Path(tmp) / "host")
        try:
            addr = host.address
            # the product's event loop (uvloop, as `wavry connect` runs)
            out, col = run_loop(_wavry_client(host, addr, Path(tmp) / "client", warmup_s, seconds))
        finally:
            host.stop()
    return out, col.latencies_ms


# ---- (c) aiortc -----------------------------------------------------------------------------


def _run_aiortc(
    w: int, h: int, fps: int, kbps: int, warmup_s: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    from wavry.bench.latency_aiortc import run_aiortc

    col = LatencyCollector()

    def on_frame(frame: Any, now_us: int) -> None:
        col.record(frame, now_us)

    facts = asyncio.run(
        run_aiortc(
            w, h, fps, kbps, noise=NOISE, warmup_s=warmup_s, seconds=seconds, on_frame=on_frame
        )
    )
    out = col.summary()
    out["queued_behind_newer"] = out["out_of_order"]
    out["cpu_cores_sender_and_receiver"] = facts.pop("cpu_cores_process")
    out.update(facts)
    return out, col.latencies_ms


# ---- (d) the browser client (wavry.bench.latency_browser) ------------------------------------


def _run_browser(
    w: int, h: int, fps: int, kbps: int, warmup_s: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    from wavry.bench.latency_browser import BrowserBenchError, run_browser

    try:
        return run_browser(w, h, fps, kbps, warmup_s, seconds)
    except BrowserBenchError as exc:
        return {"skipped": str(exc), "frames": 0, "p50_ms": None, "p95_ms": None}, []


def _run_windowed(
    w: int, h: int, fps: int, kbps: int, warmup_s: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    from wavry.bench.latency_windowed import run_windowed

    return run_windowed(w, h, fps, kbps, warmup_s, seconds)


# ---- driver ---------------------------------------------------------------------------------


def run_latency_bench(
    quick: bool = False,
    *,
    resolutions: list[tuple[int, int, int]] | None = None,
    seconds: float | None = None,
    warmup_s: float | None = None,
    bitrate_kbps: int | None = None,
    json_file: Path | None = None,
    verbose: bool = True,
    desktop: bool = True,
) -> dict[str, Any]:
    """Measure floor, wavry and aiortc per resolution; print the table, return the JSON dict.

    With ``json_file`` the JSON and a CDF plot (same stem, ``.png``) are written."""
    resolutions = resolutions or DEFAULT_RESOLUTIONS
    seconds = seconds if seconds is not None else (5.0 if quick else 20.0)
    # steady state: a new session's path proves clean after 3 s (transport.CLEAN_HOLD_S)
    warmup_s = warmup_s if warmup_s is not None else 3.5
    load0 = os.getloadavg()
    res_out: list[dict[str, Any]] = []
    cdfs: dict[str, list[float]] = {}
    for w, h, fps in resolutions:
        kbps = bitrate_kbps or BITRATE_KBPS.get((w, h), 8000)
        variants: dict[str, Any] = {}
        for name, fn in (
            ("floor", _run_floor),
            ("wavry", _run_wavry),
            ("windowed", _run_windowed),
            ("aiortc", _run_aiortc),
            ("browser", _run_browser),
        ):
            if verbose:
                print(f"  {w}x{h}@{fps} {name}: {seconds:g} s ...", file=sys.stderr, flush=True)
            summary, lat = fn(w, h, fps, kbps, warmup_s, seconds)
            variants[name] = summary
            cdfs[f"{w}x{h}@{fps}/{name}"] = lat
        res_out.append(
            {"width": w, "height": h, "fps": fps, "bitrate_kbps": kbps, "variants": variants}
        )
    from wavry.bench.latency_desktop import print_desktop_rows, run_desktop_rows

    # an application window's marker → decoded picture on X11 and on Wayland (GNOME)
    rows = run_desktop_rows(warmup_s, seconds, verbose) if desktop else {}
    results: dict[str, Any] = {
        "bench": "latency",
        "machine": machine_facts(),
        "settings": {
            "seconds_per_variant": seconds,
            "warmup_s": warmup_s,
            "codec": "h264 libx264 ultrafast zerolatency, no B-frames, sliced threads",
            "source": f"synthetic (noise={NOISE}), marker read from decoded pixels",
            "loadavg_before": load0,
            "loadavg_after": os.getloadavg(),
        },
        "resolutions": res_out,
        "desktop": rows,
    }
    results["cpu"] = {
        f"{r['width']}x{r['height']}@{r['fps']}": {
            "floor_process_cores": r["variants"]["floor"]["cpu_cores"],
            "wavry_host_cores": r["variants"]["wavry"]["cpu_host_cores"],
            "wavry_client_cores": r["variants"]["wavry"]["cpu_client_cores"],
            "aiortc_both_peers_cores": r["variants"]["aiortc"]["cpu_cores_sender_and_receiver"],
            "windowed_client_cores": r["variants"]["windowed"]["cpu_client_cores"],
            "browser_host_cores": r["variants"]["browser"].get("cpu_host_cores"),
            "browser_page_cores": r["variants"]["browser"].get("cpu_browser_cores"),
        }
        for r in res_out
    }
    results["targets"] = targets(res_out)
    if verbose:
        print_results(results)
        if rows:
            print_desktop_rows(rows)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(results, indent=2) + "\n")
        plot = write_cdf_plot(json_file.with_suffix(".png"), cdfs)
        results["plot"] = str(plot)
        if verbose:
            print(f"wrote {json_file} and {plot}")
    return results


def bench_latency_command(
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write results here (+ a CDF .png beside it)")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="5 s per variant (under ~2 min)")] = False,
) -> None:
    """Glass-to-glass latency from the synthetic marker: floor, wavry (headless and windowed),
    aiortc, browser; then an application window's marker on X11 and on Wayland (GNOME)."""
    run_latency_bench(quick=quick, json_file=json_file)
