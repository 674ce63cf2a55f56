"""The private headless PipeWire session comes up, answers Pulse requests, and goes away cleanly."""

from __future__ import annotations

import shutil

import pytest

from wavry.testing.pwsession import PipeWireSession, probe

pytestmark = pytest.mark.skipif(not probe().ok, reason="PipeWire not installed")


def test_session_starts_answers_and_stops() -> None:
    with PipeWireSession() as pw:
        runtime = pw.runtime_dir
        assert runtime is not None and (runtime / "pipewire-0").exists()
        info = pw.pactl("info")
        assert "PipeWire" in info
        module = pw.pactl("load-module", "module-null-sink", "sink_name=wavry_test_sink").strip()
        assert module.isdigit()
        assert "wavry_test_sink" in pw.pactl("list", "short", "sinks")
    assert not runtime.exists()
    assert shutil.which("pactl")
