"""`wavry bench attack`: a real `wavry host` streaming to a watching client while another
process attacks it; every figure is next to the same session's baseline (no attack) from the
same run. Attackers: src/wavry/bench/attack_traffic.py. Targets (issue 21):

* mutate: 10^6 mutated datagrams at 20 k/s (bit flips, truncations, header edits, recombined
  real traffic): host alive, host RSS growth < 5 MB, on-time ratio >= 99 % of the baseline;
* junk: 50 k junk datagrams/s: on-time ratio >= 99 % of the baseline;
* handshakes: msg1 from many loopback addresses that never answer: a new client still connects
  within 1 s; no address gets back more than 3x what it sent;
* sessions: ~1,000 handshake-only sessions from 12 addresses (9/s each, a Ping every 4 s)
  against a host in its default trust mode: its paired client keeps >= 90 % of its frames.

On time: a frame complete at the watching client within (baseline median latency + one frame
interval) of its capture, over the frames the host sent in the window (`bench extras`' rule).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavry.bench.extras import _Observer, on_time
from wavry.runtime.processes import start_host, wavry_env

__all__ = ["AttackOptions", "run_attack"]

SCENARIOS = ("mutate", "junk", "handshakes", "sessions")


@dataclass(slots=True)
class AttackOptions:
    scenarios: tuple[str, ...] = SCENARIOS
    quick: bool = False
    fps: int = 30
    size: str = "640x360"
    bitrate_kbps: int = 2000

    def scaled(self, full: float, quick: float) -> float:
        return quick if self.quick else full


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class _Host:
    def __init__(self, home: Path, opts: AttackOptions, trust_any: bool) -> None:
        args = ["--source", "synthetic", "--size", opts.size, "--fps", str(opts.fps),
                "--bitrate-kbps", str(opts.bitrate_kbps)]  # fmt: skip
        if trust_any:
            args += ["--trust", "any"]
        self.proc = start_host(args, wavry_env(home))
        self.port = self.proc.port
        self.rss: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            kb = _rss_kb(self.proc.proc.pid)
            if kb is not None:
                self.rss.append((time.time(), kb))

    def rss_between(self, start: float, end: float) -> list[int]:
        return [kb for t, kb in self.rss if start <= t <= end]

    @property
    def alive(self) -> bool:
        return self.proc.proc.poll() is None

    def stop(self) -> None:
        self._stop.set()
        self.proc.stop()


def _attacker(mode: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wavry.bench.attack_traffic", mode, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(p: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"attacker exited {p.returncode}: {err[-800:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _connect_time(port: int, home: Path) -> float | None:
    """Seconds from a new client's first msg1 to its accepted HelloAck (None: no session)."""
    import asyncio

    from wavry.rift.config import ClientConfig
    from wavry.runtime.session import SessionFailed, establish

    async def run() -> float | None:
        t0 = time.monotonic()
        try:
            est = await establish("127.0.0.1", port, ClientConfig(), timeout=5, config_dir=home)
        except SessionFailed:
            return None
        took = time.monotonic() - t0
        await est.conn.close("measured")
        return took

    return asyncio.run(run())


def _video(obs: _Observer, base: tuple[float, float], attack: tuple[float, float], fps: int
           ) -> dict[str, Any]:  # fmt: skip
    b = obs.window(*base)
    lat = [f[2] for f in b]
    if not lat:
        return {"error": "no frames in the baseline window"}
    deadline = statistics.median(lat) + 1000 / fps
    before, during = on_time(b, deadline), on_time(obs.window(*attack), deadline)
    ratio = None
    if before["on_time_ratio"] and during["on_time_ratio"] is not None:
        ratio = round(during["on_time_ratio"] / before["on_time_ratio"], 4)
    return {"deadline_ms": round(deadline, 2), "baseline": before, "attack": during,
            "on_time_of_baseline": ratio}  # fmt: skip


def _scenario(name: str, opts: AttackOptions, tmp: Path) -> dict[str, Any]:
    trust_any = name != "sessions"
    observer_home = tmp / f"{name}-observer"
    if not trust_any:  # the host's paired client: trusted before the host starts
        from wavry.store import TrustedDevices, load_or_create_identity

        me = load_or_create_identity(observer_home / "wavry")
        TrustedDevices(tmp / f"{name}-host" / "wavry").add(me.wavry_id, "bench observer")
    host = _Host(tmp / f"{name}-host", opts, trust_any)
    row: dict[str, Any] = {"scenario": name}
    obs = _Observer(host.port, observer_home / "wavry").start()
    try:
        time.sleep(2.0)  # first keyframe, rate settled
        base_s = opts.scaled(20, 6) if name != "sessions" else 12
        connects_before: list[float | None] = []
        b0 = time.time()
        if name == "handshakes":
            for k in range(5):
                connects_before.append(_connect_time(host.port, tmp / f"c-before-{k}"))
        time.sleep(max(0.0, b0 + base_s - time.time()))
        b1 = time.time()
        rss0 = host.rss_between(b1 - 3, b1)
        a0 = time.time()
        connects: list[float | None] = []
        if name == "mutate":
            count = int(opts.scaled(1_000_000, 40_000))
            p = _attacker("mutate", host.port, count, 20_000)
            attack = _finish(p, count / 20_000 * 3 + 60)
        elif name == "junk":
            secs = opts.scaled(20, 4)
            attack = _finish(_attacker("junk", host.port, secs, 50_000), secs * 4 + 30)
        elif name == "handshakes":
            secs = opts.scaled(20, 6)
            p = _attacker("handshakes", host.port, secs, 20_000, 200)
            time.sleep(1.5)  # the flood is on
            while time.time() < a0 + secs - 1:
                connects.append(_connect_time(host.port, tmp / f"c-{len(connects)}"))
                time.sleep(0.5)
            attack = _finish(p, secs * 4 + 30)
        else:
            p = _attacker("sessions", host.port, 12, 9, 12)
            attack = _finish(p, 60)
        a1 = time.time()
        time.sleep(1.0)
        row["attacker"] = attack
        row["host_alive"] = host.alive
        rss1 = host.rss_between(a0, time.time())
        if rss0 and rss1:
            row["host_rss_mb"] = {"before": round(rss0[-1] / 1024, 1),
                                  "peak": round(max(rss1) / 1024, 1),
                                  "growth": round((max(rss1) - rss0[-1]) / 1024, 2)}  # fmt: skip
        row["video"] = _video(obs, (b0 + 0.5, b1), (a0, a1), opts.fps)
        if name == "sessions":
            frames_b = len(obs.window(b0, b1))
            frames_a = len(obs.window(a0, a0 + (b1 - b0)))
            row["frames"] = {
                "baseline": frames_b,
                "attack": frames_a,
                "kept": round(frames_a / frames_b, 3) if frames_b else None,
            }
        if name == "handshakes":
            ok = [c for c in connects if c is not None]
            row["connect_s"] = {
                "baseline": [None if c is None else round(c, 3) for c in connects_before],
                "attack": [None if c is None else round(c, 3) for c in connects],
                "attack_max": round(max(ok), 3) if ok else None,
                "failed": sum(c is None for c in connects),
            }  # fmt: skip
    finally:
        obs.stop()
        host.stop()
    row["targets"] = _targets(row)
    return row


def _targets(row: dict[str, Any]) -> dict[str, str]:
    def verdict(ok: bool | None) -> str:
        return "not evaluated" if ok is None else "met" if ok else "MISSED"

    out = {"host alive": verdict(row.get("host_alive"))}
    kept = row.get("video", {}).get("on_time_of_baseline")
    name = row["scenario"]
    if name in ("mutate", "junk"):
        out["on time >= 99 % of baseline"] = verdict(None if kept is None else kept >= 0.99)
    if name == "mutate":
        g = row.get("host_rss_mb", {}).get("growth")
        out["host RSS growth < 5 MB"] = verdict(None if g is None else g < 5)
    if name == "handshakes":
        c = row.get("connect_s", {})
        worst = c.get("attack_max")
        ok = None if worst is None else worst < 1.0 and not c.get("failed")
        out["a new client connects within 1 s"] = verdict(ok)
        amp = row.get("attacker", {}).get("max_reply_ratio")
        out["no address gets > 3x its bytes"] = verdict(None if amp is None else amp <= 3)
    if name == "sessions":
        k = row.get("frames", {}).get("kept")
        out["paired client keeps >= 90 % of its frames"] = verdict(None if k is None else k >= 0.9)
    return out


def _print(rows: list[dict[str, Any]]) -> None:
    w = sys.stderr.write
    head = ("scenario", "on time base", "attack", "of base", "RSS +MB")
    w("\n{:11} {:>12} {:>8} {:>8} {:>8}  notes\n".format(*head))
    for r in rows:
        v = r.get("video", {})
        b = (v.get("baseline") or {}).get("on_time_ratio")
        a = (v.get("attack") or {}).get("on_time_ratio")
        notes = {
            "mutate": f"{r.get('attacker', {}).get('sent')} datagrams",
            "junk": f"{r.get('attacker', {}).get('rate')} datagrams/s",
            "handshakes": f"connect {r.get('connect_s', {}).get('attack')} s; max reply ratio "
            f"{r.get('attacker', {}).get('max_reply_ratio')}",
            "sessions": f"frames {r.get('frames')}; attacker {r.get('attacker')}",
        }.get(r["scenario"], "")
        g = r.get("host_rss_mb", {}).get("growth")
        w(f"{r['scenario']:11} {b!s:>12} {a!s:>8} {v.get('on_time_of_baseline')!s:>8} "
          f"{g!s:>8}  {notes}\n")  # fmt: skip
        for t, verdict in r.get("targets", {}).items():
            w(f"    {verdict:14} {t}\n")


def run_attack(opts: AttackOptions) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="wavry-bench-attack-") as tmp:
        for name in opts.scenarios:
            _say(f"[attack] {name} ...")
            try:
                rows.append(_scenario(name, opts, Path(tmp)))
            except Exception as exc:  # one scenario failing is reported, the others still run
                rows.append({"scenario": name, "error": f"{type(exc).__name__}: {exc}"})
    _print(rows)
    return {"quick": opts.quick, "scenarios": rows}
