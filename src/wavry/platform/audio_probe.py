"""`wavry doctor`'s audio probes: can this machine capture the system mix and play audio
(through the sound server's tools, wavry.platform.audio)?"""

from __future__ import annotations

import subprocess

from wavry.platform.audio import (
    BYTES_PER_SAMPLE,
    INSTALL_HINT,
    RATE,
    AudioError,
    CaptureTarget,
    PcmCapture,
    PcmPlayback,
    _tool,
    server_info,
)
from wavry.platform.probe import ProbeResult

__all__ = ["probe_capture", "probe_playback"]

_START_SERVER = (
    "start the sound server: systemctl --user start pipewire pipewire-pulse wireplumber "
    "(or `pulseaudio --start`); on a headless machine without a user session run "
    "`dbus-run-session -- sh -c 'pipewire & wireplumber & pipewire-pulse'`"
)
_NO_SINK = (
    "no output device: connect one, or for a headless host create a virtual one: "
    "pactl load-module module-null-sink sink_name=wavry_out && pactl set-default-sink wavry_out"
)


def probe_capture(env: dict[str, str] | None = None, seconds: float = 0.25) -> ProbeResult:
    """Open the system-mix capture (default sink's monitor) and read ``seconds`` of audio."""
    name = "audio-capture"
    try:
        _tool("parec")
        info = server_info(env)
    except AudioError as exc:
        remedy = INSTALL_HINT if "not found" in str(exc) else _START_SERVER
        return ProbeResult(name, False, str(exc), remedy)
    sink, source = info.get("Default Sink", ""), info.get("Default Source", "")
    if not sink or sink.startswith("@"):
        return ProbeResult(
            name, False, "the sound server has no default output to capture", _NO_SINK
        )
    block = RATE // 100 * BYTES_PER_SAMPLE
    cap = PcmCapture(CaptureTarget(f"{sink}.monitor", source=f"{sink}.monitor"), block, env=env)
    got = 0
    try:
        cap.start()
        while got < seconds * RATE * BYTES_PER_SAMPLE:
            got += len(cap.read_block(timeout=2.0))
    except AudioError as exc:
        return ProbeResult(
            name,
            False,
            str(exc),
            f"check `pactl list short sources` shows {sink}.monitor and that it is not "
            "suspended (pactl suspend-source " + sink + ".monitor 0); then rerun wavry doctor",
        )
    finally:
        cap.stop()
    ms = got // BYTES_PER_SAMPLE * 1000 // RATE
    mic = source if source and not source.endswith(".monitor") else "none (--audio mic unusable)"
    return ProbeResult(
        name, True, f"captured {ms} ms from {sink}.monitor (system mix); microphone: {mic}"
    )


def probe_playback(env: dict[str, str] | None = None, seconds: float = 0.2) -> ProbeResult:
    """Play ``seconds`` of silence to the default output and wait for pacat to finish."""
    name = "audio-playback"
    try:
        _tool("pacat")
        info = server_info(env)
    except AudioError as exc:
        remedy = INSTALL_HINT if "not found" in str(exc) else _START_SERVER
        return ProbeResult(name, False, str(exc), remedy)
    sink = info.get("Default Sink", "")
    if not sink or sink.startswith("@"):
        return ProbeResult(name, False, "the sound server has no default output", _NO_SINK)
    play = PcmPlayback(sink, env=env, stream_name="wavry doctor")
    try:
        play.start()
        play.write(b"\0" * int(seconds * RATE) * BYTES_PER_SAMPLE)
        proc = play.proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.close()
        rc = proc.wait(timeout=5)
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    except (AudioError, OSError, subprocess.TimeoutExpired) as exc:
        return ProbeResult(name, False, f"playback to {sink} failed: {exc}", _START_SERVER)
    finally:
        play.stop()
    if rc != 0:
        return ProbeResult(
            name, False, f"pacat to {sink} exited with {rc}: {err[-160:]}", _START_SERVER
        )
    return ProbeResult(name, True, f"played {int(seconds * 1000)} ms to {sink} (pacat)")
