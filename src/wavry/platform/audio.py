"""Audio devices through the Pulse protocol (PulseAudio, or PipeWire's pipewire-pulse).

Capture and playback run as ``parec``/``pacat`` child processes moving raw s16le 48 kHz stereo
PCM through pipes. Why processes and not an in-process GStreamer pipeline: they need no GLib
main loop in the host/client, die with a plain SIGTERM (clean shutdown even when the sound
server hangs), accept the Pulse special names (``@DEFAULT_MONITOR@``) and per-stream monitors
(``--monitor-stream``), and their latency is set explicitly (``--latency-msec``). The pipes are
kept short (``F_SETPIPE_SZ``) and their fill level is read with ``FIONREAD``, so the callers can
drop late audio instead of letting it queue (see :mod:`wavry.media.audio`).

Also here: the ``--audio`` specification (system / mic / source:NAME / app:NAME / off), the
per-application capture, and the host's virtual microphone (a null sink plus a remapped source
that host applications can record from).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "BYTES_PER_SAMPLE",
    "CHANNELS",
    "RATE",
    "AudioError",
    "AudioSpec",
    "CaptureTarget",
    "PcmCapture",
    "PcmPlayback",
    "VirtualMic",
    "find_sink_input",
    "open_capture_target",
    "pactl",
    "server_info",
]

RATE = 48_000
CHANNELS = 2
BYTES_PER_SAMPLE = 2 * CHANNELS  # s16le interleaved stereo: one sample frame
_F_SETPIPE_SZ = 1031  # linux/fcntl.h
INSTALL_HINT = "apt install pulseaudio-utils pipewire-pulse wireplumber (pactl, parec, pacat)"


class AudioError(RuntimeError):
    """An audio device or the sound server cannot be used (the message says why)."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AudioError(f"{name} not found ({INSTALL_HINT})")
    return path


def pactl(*args: str, env: dict[str, str] | None = None, timeout: float = 5.0) -> str:
    try:
        out = subprocess.run(
            [_tool("pactl"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"pactl {' '.join(args)}: no answer from the sound server") from exc
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        msg = lines[0] if lines else f"exit status {out.returncode}"
        raise AudioError(f"pactl {' '.join(args)}: {msg}")
    return out.stdout


def server_info(env: dict[str, str] | None = None) -> dict[str, str]:
    """``pactl info`` as a dict; AudioError when no Pulse/PipeWire server answers."""
    text = pactl("info", env=env, timeout=3.0)
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


# ---------------------------------------------------------------------------- --audio


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """What the host captures: ``off``, ``system`` (the mix), ``mic`` (default source),
    ``source`` (a named source) or ``app`` (one application's streams)."""

    kind: str
    name: str = ""

    KINDS = ("off", "system", "mic", "source", "app")

    @classmethod
    def parse(cls, text: str) -> AudioSpec:
        t = text.strip()
        kind, sep, name = t.partition(":")
        kind = kind.lower()
        if kind in ("off", "system", "mic") and not sep:
            return cls(kind)
        if kind in ("source", "app") and sep and name.strip():
            return cls(kind, name.strip())
        raise ValueError(f"--audio must be system, mic, source:NAME, app:NAME or off, got {text!r}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(slots=True)
class CaptureTarget:
    """What to hand to ``parec``: a source name or a sink-input index, plus cleanup."""

    description: str
    source: str | None = None
    monitor_stream: int | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    #: for targets that can vanish (an application's stream): "" while alive, else why not
    check_gone: Callable[[], str] | None = None

    def close(self) -> None:
        while self.cleanup:
            with contextlib.suppress(AudioError, OSError):
                self.cleanup.pop()()


def _list_json(what: str, env: dict[str, str] | None) -> list[dict[str, object]]:
    text = pactl("--format=json", "list", what, env=env)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AudioError(f"pactl list {what}: unreadable JSON ({exc})") from exc
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _props(entry: dict[str, object]) -> dict[str, str]:
    p = entry.get("properties")
    return {str(k): str(v) for k, v in p.items()} if isinstance(p, dict) else {}


def _app_label(entry: dict[str, object]) -> str:
    p = _props(entry)
    return p.get("application.name") or p.get("application.process.binary") or "?"


def find_sink_input(name: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The sink-input (playback stream) of the application called ``name``: an exact match of
    ``application.name`` or ``application.process.binary`` (case-insensitive) wins over a
    substring match. Returns (index, label); AudioError lists what is playing otherwise."""
    inputs = _list_json("sink-inputs", env)
    want = name.lower()
    exact, partial = [], []
    for si in inputs:
        p = _props(si)
        values = [p.get("application.name", ""), p.get("application.process.binary", "")]
        values = [v.lower() for v in values if v]
        idx = si.get("index")
        if not isinstance(idx, int):
            continue
        if want in values:
            exact.append((idx, _app_label(si)))
        elif any(want in v for v in values):
            partial.append((idx, _app_label(si)))
    found = exact or partial
    if not found:
        playing = sorted({_app_label(si) for si in inputs}) or ["nothing"]
        raise AudioError(
            f"no application named {name!r} is playing audio (playing now: {', '.join(playing)})"
        )
    return found[0]


def _source_names(env: dict[str, str] | None) -> list[str]:
    out = pactl("list", "short", "sources", env=env)
    return [ln.split("\t")[1] for ln in out.splitlines() if ln.count("\t") >= 1]


def open_capture_target(spec: AudioSpec, env: dict[str, str] | None = None) -> CaptureTarget:
    """Resolve ``spec`` against the running sound server (AudioError with a reason if not)."""
    if spec.kind == "off":
        raise AudioError("audio capture is off")
    info = server_info(env)
    if spec.kind == "system":
        sink = info.get("Default Sink", "")
        if not sink or sink.startswith("@"):
            raise AudioError("the sound server has no default output (sink) to capture")
        return CaptureTarget(f"system mix ({sink}.monitor)", source=f"{sink}.monitor")
    if spec.kind == "mic":
        src = info.get("Default Source", "")
        if not src or src.startswith("@"):
            raise AudioError("the sound server has no default input (microphone)")
        if src.endswith(".monitor"):
            # capturing an output's monitor as "the microphone" would echo the speakers back
            raise AudioError(
                f"no microphone: the default input is {src}, a monitor of an output; connect a "
                "microphone or choose one with `pactl set-default-source NAME` "
                f"(capture the monitor anyway with --audio source:{src})"
            )
        return CaptureTarget(f"microphone ({src})", source=src)
    if spec.kind == "source":
        names = _source_names(env)
        if spec.name not in names:
            raise AudioError(
                f"no audio source named {spec.name!r} (sources: {', '.join(names) or 'none'})"
            )
        return CaptureTarget(f"source {spec.name}", source=spec.name)
    if spec.kind == "app":
        idx, label = find_sink_input(spec.name, env)

        def gone() -> str:
            out = pactl("list", "short", "sink-inputs", env=env)
            alive = any(ln.split("\t", 1)[0] == str(idx) for ln in out.splitlines())
            return "" if alive else f"application {label} stopped playing (stream {idx} closed)"

        return CaptureTarget(
            f"application {label} (stream {idx})", monitor_stream=idx, check_gone=gone
        )
    raise AudioError(f"unknown audio kind {spec.kind!r}")


# ---------------------------------------------------------------------------- PCM processes


def _pipe_level(fd: int) -> int:
    """Bytes waiting in a pipe (either end)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


def _shrink_pipe(fd: int, size: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=2)


def _pcm_args() -> list[str]:
    return ["--raw", "--format=s16le", f"--rate={RATE}", f"--channels={CHANNELS}"]


class PcmCapture:
    """``parec`` raw PCM from a source (or one application's stream) in fixed-size blocks."""

    def __init__(
        self,
        target: CaptureTarget,
        block_bytes: int,
        *,
        latency_ms: int = 5,
        env: dict[str, str] | None = None,
        stream_name: str = "wavry capture",
    ) -> None:
        self.target = target
        self.block_bytes = block_bytes
        self.latency_ms = latency_ms
        self.env = env
        self.stream_name = stream_name
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd = -1

    def start(self) -> PcmCapture:
        argv = [_tool("parec"), *_pcm_args(), f"--latency-msec={self.latency_ms}"]
        argv += ["--client-name=wavry", f"--stream-name={self.stream_name}"]
        if self.target.monitor_stream is not None:
            argv.append(f"--monitor-stream={self.target.monitor_stream}")
        elif self.target.source:
            argv.append(f"--device={self.target.source}")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            bufsize=0,
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        return self

    def backlog(self) -> int:
        """Captured bytes not read yet."""
        return _pipe_level(self._fd) if self._fd >= 0 else 0

    def discard(self, nbytes: int) -> None:
        """Read and forget ``nbytes`` (late audio)."""
        while nbytes > 0:
            chunk = os.read(self._fd, min(nbytes, 65536))
            if not chunk:
                return
            nbytes -= len(chunk)

    def read_block(self, timeout: float | None = None) -> bytes:
        """The next block; AudioError when the capture ended (the reason from parec) or no
        audio came within ``timeout`` seconds."""
        if self.proc is None:
            raise AudioError("capture not started")
        buf = bytearray()
        while len(buf) < self.block_bytes:
            if timeout is not None and not select.select([self._fd], [], [], timeout)[0]:
                raise AudioError(
                    f"no audio from {self.target.description} within {timeout:.1f} s "
                    "(is the sound server suspended or the device busy?)"
                )
            try:
                chunk = os.read(self._fd, self.block_bytes - len(buf))
            except OSError as exc:
                raise AudioError(f"capture pipe: {exc}") from exc
            if not chunk:
                raise AudioError(f"capture from {self.target.description} ended: {self._why()}")
            buf += chunk
        return bytes(buf)

    def _why(self) -> str:
        proc = self.proc
        if proc is None:
            return "not started"
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "the capture stream closed"
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        last = err.splitlines()[-1] if err else ""
        return last or f"parec exited with status {proc.returncode}"

    def terminate(self) -> None:
        """End parec (from another thread): a blocked ``read_block`` then fails."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()

    def stop(self) -> None:
        _stop(self.proc)
        if self.proc is not None:
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()
        self.proc = None
        self._fd = -1


class PcmPlayback:
    """``pacat`` raw PCM playback into a sink through a short pipe."""

    def __init__(
        self,
        sink: str | None = None,
        *,
        latency_ms: int = 10,
        env: dict[str, str] | None = None,
        stream_name: str = "wavry playback",
        pipe_bytes: int = 4096,
    ) -> None:
        self.sink = sink
        self.latency_ms = latency_ms
        self.env = env
        self.stream_name = stream_name
        self.pipe_bytes = pipe_bytes
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._lock = threading.Lock()

    def start(self) -> PcmPlayback:
        argv = [_tool("pacat"), "--playback", *_pcm_args(), f"--latency-msec={self.latency_ms}"]
        argv += ["--client-name=wavry", f"--stream-name={self.stream_name}"]
        if self.sink:
            argv.append(f"--device={self.sink}")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.env,
            bufsize=0,
        )
        assert self.proc.stdin is not None
        self._fd = self.proc.stdin.fileno()
        _shrink_pipe(self._fd, self.pipe_bytes)
        return self

    def queued(self) -> int:
        """Bytes written but not yet taken by pacat."""
        with self._lock:
            return _pipe_level(self._fd) if self._fd >= 0 else 0

    def write(self, pcm: bytes) -> None:
        proc = self.proc
        if proc is None or self._fd < 0:
            raise AudioError("playback not started")
        view = memoryview(pcm)
        while view:
            try:
                n = os.write(self._fd, view)
            except (BrokenPipeError, OSError) as exc:
                err = b""
                if proc.stderr is not None:
                    with contextlib.suppress(OSError):
                        proc.wait(timeout=1)
                        err = proc.stderr.read()
                why = err.decode(errors="replace").strip().splitlines()
                raise AudioError(
                    f"playback to {self.sink or 'the default output'} ended: "
                    f"{why[-1] if why else exc}"
                ) from exc
            view = view[n:]

    def stop(self) -> None:
        proc = self.proc
        with self._lock:
            self._fd = -1
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        _stop(proc)
        if proc is not None and proc.stderr is not None:
            with contextlib.suppress(OSError):
                proc.stderr.close()
        self.proc = None


# ---------------------------------------------------------------------------- virtual mic


class VirtualMic:
    """A null sink ``wavry_mic`` (what the client's microphone is played into) and a source
    ``wavry_mic_source`` remapped from its monitor, which host applications record from.
    ``unload()`` removes both; names get a ``_<pid>`` suffix if another host holds them."""

    def __init__(self, env: dict[str, str] | None = None, base: str = "wavry_mic") -> None:
        self.env = env
        self.base = base
        self.sink = ""
        self.source = ""
        self._modules: list[str] = []

    def load(self) -> VirtualMic:
        sinks = pactl("list", "short", "sinks", env=self.env)
        taken = {ln.split("\t")[1] for ln in sinks.splitlines() if ln.count("\t") >= 1}
        base = self.base if self.base not in taken else f"{self.base}_{os.getpid()}"
        self.sink, self.source = base, f"{base}_source"
        try:
            self._modules.append(
                pactl(
                    "load-module",
                    "module-null-sink",
                    f"sink_name={self.sink}",
                    f"rate={RATE}",
                    f"channels={CHANNELS}",
                    "sink_properties=device.description=Wavry-remote-microphone-output",
                    env=self.env,
                ).strip()
            )
            self._modules.append(
                pactl(
                    "load-module",
                    "module-remap-source",
                    f"master={self.sink}.monitor",
                    f"source_name={self.source}",
                    "source_properties=device.description=Wavry-remote-microphone",
                    env=self.env,
                ).strip()
            )
        except AudioError:
            self.unload()
            raise
        return self

    def unload(self) -> None:
        while self._modules:
            with contextlib.suppress(AudioError):
                pactl("unload-module", self._modules.pop(), env=self.env)
