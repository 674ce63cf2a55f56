"""The client's stats overlay shows the audio A/V offset (audio timestamp minus the latest
presented frame's, both on the host clock)."""

from __future__ import annotations

from wavry.media.audio_session import ClientAudio


def test_overlay_shows_av_offset_and_errors() -> None:
    off = ClientAudio(lambda _m: None, play=False)
    off.on_packet(1_000_000, b"x", None)
    assert off.overlay_lines() == []

    a = ClientAudio(lambda _m: None)
    assert a.overlay_lines() == []  # nothing received yet
    a.error = "no server"  # playback failed: packets are counted, never played
    a.video_ts_us = 1_000_000
    a.on_packet(1_012_000, b"x", None)
    assert a.overlay_lines() == ["audio: stopped (no server)"]
    a.error = ""
    assert a.overlay_lines() == ["audio: A/V +12 ms, drops 0"]
