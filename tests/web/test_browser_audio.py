"""The host's sound in the page: a tone played into the host's PipeWire output (a private
headless PipeWire session, as tests/test_audio_e2e.py) is captured by `wavry host --web`, sent as
Opus, decoded in the page with WebCodecs and fed to its AudioWorklet; the page's decoded
samples must carry the tone's frequency."""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wavry.testing.pwsession import PipeWireSession, probe

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not probe().ok, reason="PipeWire not installed: " + probe().detail),
]
RATE = 48_000


def _audio_helpers() -> Any:
    """The tone player of tests/test_audio_e2e.py (one of each)."""
    path = Path(__file__).resolve().parents[1] / "test_audio_e2e.py"
    spec = importlib.util.spec_from_file_location("wavry_audio_e2e_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


AUDIO = _audio_helpers()


@pytest.fixture(scope="module")
def pw() -> Iterator[PipeWireSession]:
    session = PipeWireSession().start()
    try:
        yield session
    finally:
        session.stop()


def test_host_tone_plays_in_page(chromium: Any, web: Any, tmp_path: Path, pw: Any) -> None:
    sink = AUDIO.null_sink(pw, "web_host_speakers")
    pw.pactl("set-default-sink", "web_host_speakers")
    tone = AUDIO.TonePlayer(pw, "web_host_speakers", 660.0, app="webtone")
    tone.wait_playing(pw, "webtone")
    try:
        args = ("--source", "synthetic", "--size", "320x240", "--fps", "30", "--trust", "any")
        with web.host(tmp_path, *args, env=pw.env()) as host:
            page = web.open_page(chromium, host.link())
            try:
                web.wait_stats(page, lambda s: s.get("framesDecoded", 0) > 5)
                page.mouse.click(10, 100)  # browsers start audio after a user gesture
                stats = web.wait_stats(page, lambda s: s.get("audioPackets", 0) > 150)
                time.sleep(1.2)  # a full second of decoded audio in the page's window
                samples = np.array(page.evaluate("window.wavryAudioSamples()"))
                stats = page.evaluate("window.wavryStats()")
            finally:
                page.context.close()
            assert "audio: system mix (web_host_speakers.monitor)" in host.output()
    finally:
        tone.stop()
        pw.pactl("unload-module", sink)
    assert stats["audioDecodeErrors"] == 0, stats
    assert stats["audio"].startswith("playing"), stats
    spec = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spec[:5] = 0
    hz = float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spec))])
    rms = float(np.sqrt(np.mean(samples**2)))
    assert abs(hz - 660.0) < 10, (hz, rms)
    assert rms > 0.1 * (12_000 / 32768) / math.sqrt(2), rms
