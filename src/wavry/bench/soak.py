"""`wavry bench soak --minutes N`: a real `wavry host` and a real `wavry connect` for N minutes
through an impairment proxy that keeps changing the path, while the session carries clipboard
text both ways, typed keys and files; RSS, open fds and threads of both processes over time.

Each cycle (`--cycle-seconds`, default 60) on two Xvfb displays (A: the host's picture with a
moving bar, B: the client's window):

* clipboard: a copy on B must arrive on A, then one on A on B (one of the two larger than a
  datagram, so it travels the file path; they alternate);
* keys: a key typed in the client's window; then no key may be held on A;
* the path: 3 % loss both ways, then the capacity down to 1.5 Mbit/s, then an address change
  (the proxy's upstream socket rebinds, as a NAT does);
* every `--reconnect-every` cycles: a key held down in the client window, then a 12 s blackout
  (the session is lost: the host must release the key, the client must reconnect) and the host
  sends its `--send-file` to the new session (a file transfer per reconnect).

The baseline is the run itself: figures after the warm-up against the last part of the run.
Targets (issue 21): RSS growth < 5 MB, no fd or thread growth, no stuck key, no session lost
(every reconnect is one of the blackouts, and each blackout ends in a reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.bench.netlab import ImpairmentProxy
from wavry.bench.soak_desktop import Animator, ClipboardProbe, HeldKeys, find_window, xdotool
from wavry.bench.soak_report import ProcessSample, summarize, write_soak_plot
from wavry.platform.xvfb import XvfbServer

__all__ = ["SoakOptions", "run_soak"]

BLACKOUT_S = 12.0  # longer than a session's 10 s of silence: both ends give it up
LARGE_CLIPBOARD = 200_000  # bytes: more than a datagram, so it travels as a file
#: the client's live line: "last 1 s:  59 fps shown, ..." (older clients: "  59 fps ...")
_FPS = re.compile(r"^(?:last 1 s:)?\s*(\d+) fps\b")


@dataclass(slots=True)
class SoakOptions:
    minutes: float = 60.0
    cycle_s: float = 60.0
    reconnect_every: int = 5
    sample_s: float = 5.0
    fps: int = 15
    file_bytes: int = 256 << 10  # sent by the host to each new session (1.5 Mbit/s video)
    verbose: bool = True


@dataclass(slots=True)
class _Proc:
    name: str
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (t, line) of interest


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_process(pid: int) -> ProcessSample | None:
    """RSS, open fds and threads of a live process (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return ProcessSample(
        rss_kb=int(fields["VmRSS"].split()[0]),
        fds=fds,
        threads=int(fields["Threads"].strip()),
    )


class Soak:
    def __init__(self, opts: SoakOptions, workdir: Path) -> None:
        self.opts = opts
        self.dir = workdir
        self.t0 = time.monotonic()
        self.samples: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.blackouts: list[tuple[float, float]] = []
        self.procs: dict[str, _Proc] = {}
        self.proxy: ImpairmentProxy | None = None
        self.received_files = 0
        self.fps: list[tuple[float, int]] = []  # the client's live figure, once a second

    def now(self) -> float:
        return time.monotonic() - self.t0

    def event(self, kind: str, **data: Any) -> None:
        self.events.append({"t": round(self.now(), 2), "kind": kind, **data})
        if self.opts.verbose:
            extra = " ".join(f"{k}={v}" for k, v in data.items())
            _say(f"[soak {self.now():7.1f} s] {kind} {extra}")

    # ---- processes ------------------------------------------------------------------

    async def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> _Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wavry", *args,
            env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        p = _Proc(name, proc)
        self.procs[name] = p
        asyncio.get_running_loop().create_task(self._read(p))
        return p

    async def _read(self, p: _Proc) -> None:
        assert p.proc.stdout is not None
        interesting = re.compile(
            r"reconnect|stalled|resumed|ended|error|Traceback|received|moved|accepted", re.I
        )
        async for raw in p.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            p.lines.append(line)
            del p.lines[:-400]
            if interesting.search(line):
                p.marks.append((self.now(), line))
                if self.opts.verbose and not _FPS.match(line):
                    _say(f"[{p.name} {self.now():7.1f} s] {line}")
            if p.name == "client":
                if line.startswith("received "):
                    self.received_files += 1
                elif m := _FPS.match(line):
                    self.fps.append((self.now(), int(m.group(1))))

    def _env(self, server: XvfbServer, home: str) -> dict[str, str]:
        env = server.env()
        env.update(
            XDG_CONFIG_HOME=str(self.dir / home),
            PYTHONUNBUFFERED="1",
            SDL_VIDEODRIVER="x11",
            SDL_AUDIODRIVER="dummy",
        )
        return env

    async def start(self, a: XvfbServer, b: XvfbServer) -> None:
        send = self.dir / "soak-file.bin"
        send.write_bytes(os.urandom(self.opts.file_bytes))
        (self.dir / "host-in").mkdir()
        (self.dir / "client-in").mkdir()
        port = _free_port()
        await self._spawn(
            "host",
            ["host", "--listen", f"127.0.0.1:{port}", "--trust", "any", "--source", "x11",
             "--display", a.display, "--fps", str(self.opts.fps), "--bitrate-kbps", "1500",
             "--send-file", str(send), "--file-out-dir", str(self.dir / "host-in")],
            self._env(a, "host-config"),
        )  # fmt: skip
        await self._wait_line("host", "listening on", 30)
        self.proxy = ImpairmentProxy(("127.0.0.1", 0), ("127.0.0.1", port), seed=21)
        await self.proxy.start()
        listen = self.proxy.address
        total = self.opts.minutes * 60 + 120
        await self._spawn(
            "client",
            ["connect", f"{listen[0]}:{listen[1]}", "--seconds", str(int(total)),
             "--file-out-dir", str(self.dir / "client-in")],
            self._env(b, "client-config"),
        )  # fmt: skip

    async def _wait_line(self, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        p = self.procs[name]
        while time.monotonic() < deadline:
            if any(text in line for line in p.lines):
                return
            if p.proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{name} did not say {text!r}: " + " | ".join(p.lines[-15:]))

    def sample(self) -> None:
        row: dict[str, Any] = {"t": round(self.now(), 2)}
        for name, p in self.procs.items():
            s = sample_process(p.proc.pid)
            row[name] = None if s is None else s.as_dict()
        self.samples.append(row)

    async def stop(self) -> None:
        for p in self.procs.values():
            if p.proc.returncode is None:
                p.proc.terminate()
        for p in self.procs.values():
            try:
                await asyncio.wait_for(p.proc.wait(), 15)
            except TimeoutError:
                p.proc.kill()
                await p.proc.wait()
        if self.proxy is not None:
            await self.proxy.close()


async def _still_held(held: HeldKeys) -> list[int]:
    """Keys held on the host display now and still 2 s later (a key whose release is merely
    late on a busy machine is not stuck; the host releases a quiet client's keys in 0.9 s)."""
    first = held.held()
    if not first:
        return []
    await asyncio.sleep(2.0)
    return [k for k in held.held() if k in first]


async def _cycle(
    soak: Soak,
    n: int,
    probes: tuple[ClipboardProbe, ClipboardProbe],
    held: HeldKeys,
    b: XvfbServer,
    window: int,
) -> None:
    opts, proxy = soak.opts, soak.proxy
    assert proxy is not None
    start = time.monotonic()
    on_a, on_b = probes

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(0.0, start + fraction * opts.cycle_s - time.monotonic()))

    proxy.update("both", loss=0.0)
    proxy.set_rate("both", None)
    # clipboard both ways; one of the two is large (the file path), alternating
    for src, dst, way in ((on_b, on_a, "client->host"), (on_a, on_b, "host->client")):
        await at(0.05 if way == "client->host" else 0.15)
        large = (n % 2 == 0) == (way == "host->client")
        body = f"soak {n} {way} " + ("x" * LARGE_CLIPBOARD if large else "small")
        src.copy(body)
        took = await asyncio.to_thread(dst.wait_for, body, 10.0)
        soak.event("clipboard", way=way, bytes=len(body), ok=took is not None,
                   ms=None if took is None else round(took * 1000))  # fmt: skip
    await at(0.25)
    xdotool(b, "windowfocus", str(window))
    xdotool(b, "key", "--window", str(window), "a")
    await asyncio.sleep(1.0)
    soak.event("key tap", held_on_host=await _still_held(held))
    await at(0.33)
    proxy.update("both", loss=0.03)
    soak.event("path", loss=0.03)
    await at(0.55)
    proxy.update("both", loss=0.0)
    proxy.set_rate("both", 1500.0)
    soak.event("path", capacity_kbps=1500)
    await at(0.70)
    proxy.set_rate("both", None)
    new = await proxy.rebind()
    soak.event("address change", to=f"{new[0]}:{new[1]}")
    if (n + 1) % opts.reconnect_every:
        await at(1.0)
        return
    await at(0.75)
    xdotool(b, "windowfocus", str(window))
    xdotool(b, "keydown", "--window", str(window), "b")
    await asyncio.sleep(0.5)
    pressed = held.held()
    blackout = soak.now()
    proxy.update("both", loss=1.0)
    soak.event("blackout", seconds=BLACKOUT_S, held_before=pressed)
    await asyncio.sleep(4.0)  # the host has seen 3 s of silence: the key must be released
    soak.event("during blackout", held_on_host=await _still_held(held))
    await asyncio.sleep(max(0.0, blackout + BLACKOUT_S - soak.now()))
    xdotool(b, "keyup", "--window", str(window), "b")
    proxy.update("both", loss=0.0)
    soak.blackouts.append((blackout, soak.now()))
    await at(1.0)


async def _soak(opts: SoakOptions, workdir: Path) -> dict[str, Any]:
    a = XvfbServer(320, 240).start()
    b = XvfbServer(640, 480).start()
    animator = Animator(a, 1 / opts.fps).start()
    soak = Soak(opts, workdir)
    probes: tuple[ClipboardProbe, ClipboardProbe] | None = None
    held = HeldKeys(a)
    error = None
    try:
        await soak.start(a, b)
        window = await asyncio.to_thread(find_window, b, "Wavry", 40.0)
        if window is None:
            raise RuntimeError("no client window: " + " | ".join(soak.procs["client"].lines[-15:]))
        probes = (ClipboardProbe(a), ClipboardProbe(b))
        await asyncio.sleep(3.0)
        soak.t0 = time.monotonic()  # time 0: the session streams
        stop_at = soak.t0 + opts.minutes * 60

        async def sampler() -> None:
            while True:
                soak.sample()
                await asyncio.sleep(opts.sample_s)

        task = asyncio.get_running_loop().create_task(sampler())
        n = 0
        while time.monotonic() + 0.5 * opts.cycle_s < stop_at:
            await _cycle(soak, n, probes, held, b, window)
            n += 1
            for f in (workdir / "client-in").iterdir():  # keep the disk flat (finished files)
                if not f.name.endswith(".part"):
                    with contextlib.suppress(OSError):
                        f.unlink()
            if any(p.proc.returncode is not None for p in soak.procs.values()):
                break
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        soak.sample()
        task.cancel()
        soak.event("end", cycles=n)
    except Exception as exc:  # reported in the result: a soak that could not run says why
        error = f"{type(exc).__name__}: {exc}"
    finally:
        alive = {name: p.proc.returncode is None for name, p in soak.procs.items()}
        await soak.stop()
        if probes is not None:
            for p in probes:
                p.close()
        held.close()
        animator.close()
        a.stop()
        b.stop()
    return summarize(soak, alive, error)


def run_soak(opts: SoakOptions, json_file: Path | None) -> dict[str, Any]:
    from wavry.net.loop import run

    workdir = Path(tempfile.mkdtemp(prefix="wavry-soak-"))
    try:
        result = run(_soak(opts, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if json_file is not None and str(json_file) != "-":
        result["plot"] = write_soak_plot(json_file, result)
    return result
