"""Audio devices on a private headless PipeWire: capture targets, the virtual microphone, the
bounded player (drops the oldest audio, never holds more than 20 ms), sender timestamps, and the
doctor probes opening real devices."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np
import pytest

from wavry.media.audio import AudioPlayer, AudioSender, OpusEncoder
from wavry.platform.audio import (
    AudioError,
    AudioSpec,
    VirtualMic,
    open_capture_target,
    probe_capture,
    probe_playback,
)
from wavry.testing.pwsession import PipeWireSession, probe

pytestmark = pytest.mark.skipif(not probe().ok, reason="PipeWire not installed: " + probe().detail)


@pytest.fixture(scope="module")
def pw() -> Iterator[PipeWireSession]:
    with PipeWireSession() as session:
        yield session


def sinks(pw: PipeWireSession) -> set[str]:
    out = pw.pactl("list", "short", "sinks")
    return {ln.split("\t")[1] for ln in out.splitlines() if "\t" in ln}


def test_capture_targets_resolve_or_say_why(pw: PipeWireSession) -> None:
    env = pw.env()
    default = pw.pactl("get-default-sink").strip()
    t = open_capture_target(AudioSpec("system"), env)
    assert t.source == f"{default}.monitor" and "system mix" in t.description
    assert open_capture_target(AudioSpec("source", t.source), env).source == t.source
    with pytest.raises(AudioError, match=r"no audio source named 'nope' \(sources: .*monitor"):
        open_capture_target(AudioSpec("source", "nope"), env)
    with pytest.raises(AudioError, match="no application named 'ghost' is playing audio"):
        open_capture_target(AudioSpec("app", "ghost"), env)
    # a headless PipeWire's default input is the null sink's monitor: not a microphone
    with pytest.raises(AudioError, match=r"no microphone: .*monitor of an output"):
        open_capture_target(AudioSpec("mic"), env)
    with pytest.raises(AudioError, match="off"):
        open_capture_target(AudioSpec("off"), env)
    bad = dict(env, PULSE_SERVER="unix:/nonexistent/socket")
    with pytest.raises(AudioError, match="pactl info"):
        open_capture_target(AudioSpec("system"), bad)


def test_virtual_mic_loads_unloads_and_avoids_a_taken_name(pw: PipeWireSession) -> None:
    env = pw.env()
    first = VirtualMic(env).load()
    second = VirtualMic(env).load()  # another host on the same server
    try:
        assert (first.sink, first.source) == ("wavry_mic", "wavry_mic_source")
        assert second.sink.startswith("wavry_mic_") and second.sink != first.sink
        sources = pw.pactl("list", "short", "sources")
        assert "wavry_mic_source" in sources and second.source in sources
    finally:
        second.unload()
        first.unload()
    assert not any(s.startswith("wavry_mic") for s in sinks(pw))


def test_player_never_buffers_more_than_20ms_and_drops_the_oldest(pw: PipeWireSession) -> None:
    env = pw.env()
    pw.pactl("load-module", "module-null-sink", "sink_name=player_test")
    enc = OpusEncoder(10)
    packets = []
    for i in range(100):
        t = (np.arange(480) + i * 480) / 48_000
        s = (np.sin(2 * math.pi * 500 * t) * 8000).astype(np.int16)
        packets.extend(enc.encode(np.stack([s, s], axis=1).tobytes()))
    player = AudioPlayer("player_test", env=env).start()
    try:
        for p in packets[:50]:  # a burst of 500 ms arriving at once (e.g. after a stall)
            player.push(p)
            assert player.buffered_bytes() <= 20 * 48 * 4
        assert player.stats.dropped_packets >= 45  # only the newest ~20 ms were kept
        for p in packets[50:]:  # then real time
            player.push(p)
            time.sleep(0.01)
        time.sleep(0.1)
        assert player.stats.error == ""
        assert player.stats.written_bytes >= 40 * 1920
        assert max(player.stats.buffer_ms_samples) <= 20.0
    finally:
        player.stop()


def test_sender_timestamps_follow_the_wall_clock(pw: PipeWireSession) -> None:
    env = pw.env()
    target = open_capture_target(AudioSpec("system"), env)
    got: list[tuple[int, bytes, float]] = []
    sender = AudioSender(target, lambda ts, p: got.append((ts, p, time.time())), env=env)
    sender.start()
    time.sleep(1.0)
    sender.stop()
    assert len(got) >= 80, sender.stats
    ts = np.array([g[0] for g in got], dtype=np.int64)
    steps = np.diff(ts)
    assert np.median(steps) == 10_000  # a sample clock: 10 ms per packet
    lag_ms = [(arrived - t / 1e6) * 1000 for t, _, arrived in got]
    assert 10 <= np.median(lag_ms) < 40  # first sample → packet out: the frame + capture latency


def test_doctor_probes_open_the_devices(pw: PipeWireSession) -> None:
    cap, play = probe_capture(pw.env()), probe_playback(pw.env())
    assert cap.ok and "captured" in cap.detail and ".monitor" in cap.detail, cap
    assert play.ok and "played" in play.detail, play
    bad = dict(pw.env(), PULSE_SERVER="unix:/nonexistent/socket")
    for r in (probe_capture(bad), probe_playback(bad)):
        assert not r.ok and "systemctl --user start pipewire" in r.remedy, r


def test_capture_ends_with_a_reason_when_parec_fails(pw: PipeWireSession) -> None:
    env = dict(pw.env(), PULSE_SERVER="unix:/nonexistent/socket")
    errors: list[str] = []
    from wavry.platform.audio import CaptureTarget

    sender = AudioSender(
        CaptureTarget("test source", source="x"), lambda *_: None, env=env, on_error=errors.append
    ).start()
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    sender.stop()
    assert errors and "capture from test source ended" in errors[0], errors
