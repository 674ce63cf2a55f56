"""Hardware codec paths of issue 4: the GStreamer encoder pipeline (run with software x264enc,
the same code that drives vah264enc/vaapih264enc/nvh264enc/qsvh264enc), the hardware encoder
probes, and hardware decode with its software fallback reported in the client's stats."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import av
import pytest

from wavry.media.decode import Decoder, hw_device_types
from wavry.media.encode import Codec, Encoder, open_encoder, probe_hardware_h264
from wavry.media.gst_encode import GstEncoder, gst_element_available, probe_gst_encoder
from wavry.media.marker import read_marker
from wavry.media.synthetic import SyntheticCapture

_MISSING = gst_element_available("x264enc") or gst_element_available("h264parse")
needs_x264enc = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"{_MISSING}: apt install gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad",
)


@needs_x264enc
def test_gst_pipeline_one_access_unit_per_frame_keyframes_and_markers() -> None:
    cap = SyntheticCapture(640, 360, 30, paced=False, noise=20)
    cap.start()
    enc = open_encoder(Codec.H264, 640, 360, 30, 800, "gst:x264enc")
    assert isinstance(enc, GstEncoder) and enc.encoder_name == "gst:x264enc"
    dec = Decoder(Codec.H264)
    sizes: dict[int, int] = {}
    try:
        for i in range(60):
            shot = cap.grab()
            if i == 20:
                enc.set_bitrate(4000)  # DELTA raises the rate: no keyframe, bigger frames
            if i == 40:
                enc.request_keyframe()
            out = enc.encode(shot.image)
            assert out.data.startswith(b"\x00\x00\x00\x01") or out.data.startswith(b"\x00\x00\x01")
            assert out.keyframe == (i in (0, 40)), i
            if out.keyframe:
                assert b"\x00\x00\x01\x67" in out.data or b"\x00\x00\x00\x01\x67" in out.data
            sizes[i] = len(out.data)
            pic = dec.decode(out.data)
            assert pic is not None, f"frame {i} did not decode on its own"
            got = read_marker(pic.frame)
            assert got == (shot.frame_index, shot.capture_ts), (i, got)
    finally:
        enc.close()
    low = sum(sizes[i] for i in range(10, 20)) / 10
    high = sum(sizes[i] for i in range(30, 40)) / 10
    assert high > 2 * low, (low, high)
    assert enc.frames_encoded == 60 and enc.bitrate_kbps == 4000


@needs_x264enc
def test_gst_encoder_converts_bgr0_and_rejects_other_codecs() -> None:
    frame = av.VideoFrame(320, 240, "bgr0")
    enc = GstEncoder(Codec.H264, 320, 240, 30, 500)
    try:
        assert enc.encode(frame).keyframe
    finally:
        enc.close()
    from wavry.media.encode import EncoderError

    with pytest.raises(EncoderError, match=r"H\.264 only"):
        GstEncoder(Codec.HEVC, 320, 240, 30, 500)
    with pytest.raises(EncoderError, match="not a supported"):
        GstEncoder(Codec.H264, 320, 240, 30, 500, element="fakeenc")


def test_hardware_encoder_probes_say_why_and_fall_back() -> None:
    va = probe_gst_encoder("vah264enc")
    if not os.path.isdir("/dev/dri"):
        assert not va.ok and "no /dev/dri render node" in va.detail and "VA-API" in va.remedy
    nv = probe_gst_encoder("nvh264enc")
    if not os.path.exists("/dev/nvidia0"):
        assert not nv.ok and "NVIDIA" in nv.detail + nv.remedy
    choice = probe_hardware_h264()
    names = [p.name for p in choice.probes]
    assert names[:2] == ["h264_nvenc", "h264_qsv"]
    assert "gst:vah264enc" in names and "gst:vaapih264enc" in names
    if not any(p.ok for p in choice.probes[:-1]):
        assert choice.encoder_name == "libx264" and names[-1] == "libx264"
    assert all(p.ok or p.remedy for p in choice.probes)
    x = probe_gst_encoder("x264enc")
    assert x.ok == (not _MISSING), x
    # the PyAV encoder is still what open_encoder gives for FFmpeg names
    assert isinstance(open_encoder(Codec.H264, 320, 240, 30, 500, "libx264"), Encoder)


def _packets(n: int = 5) -> list[bytes]:
    cap = SyntheticCapture(320, 240, 30, paced=False)
    cap.start()
    enc = Encoder(Codec.H264, 320, 240, 30, 1000)
    out = [enc.encode(cap.grab().image, force_keyframe=i == 0).data for i in range(n)]
    enc.close()
    return out


def test_hwdecode_falls_back_to_software_with_reason(caplog: pytest.LogCaptureFixture) -> None:
    packets = _packets()
    dec = Decoder(Codec.H264, hwaccel="auto")
    info = dec.describe()
    assert info["hwdecode"] == "auto"
    if info["device"] == "software":
        assert info["fallback_reason"], "a software fallback must say why"
        for kind in hw_device_types():
            assert kind in info["fallback_reason"]
        assert "decoding in software" in caplog.text
    for p in packets:
        pic = dec.decode(p)
        assert pic is not None and pic.format == "yuv420p"
    bogus = Decoder(Codec.H264, hwaccel="nosuchdevice")
    assert bogus.describe()["device"] == "software"
    assert "not a hardware device type" in bogus.describe()["fallback_reason"]
    plain = Decoder(Codec.H264).describe()
    assert plain == {"codec": "h264", "hwdecode": "none", "device": "software",
                     "fallback_reason": ""}  # fmt: skip


def test_hw_decoder_failing_on_first_frame_switches_to_software() -> None:
    """The device opened but cannot decode this stream: the packet is decoded in software."""
    packets = _packets(3)

    class BrokenHardwareContext:
        def decode(self, _packet: object) -> list[object]:
            raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    dec = Decoder(Codec.H264)
    dec.hwaccel_requested, dec.hw_device, dec._ctx = "auto", "cuda", BrokenHardwareContext()
    pic = dec.decode(packets[0])
    assert pic is not None and dec.hw_device == ""
    assert dec.describe()["device"] == "software"
    assert "cuda: decoding failed" in dec.describe()["fallback_reason"]
    assert dec.decode(packets[1]) is not None and dec.errors == 0


def test_connect_hwdecode_is_reported_in_stats(proc: SimpleNamespace, tmp_path: Path) -> None:
    with proc.host_process(tmp_path / "h", *proc.HOST_ARGS) as (port, _lines):
        stats = tmp_path / "stats.json"
        r = subprocess.run(
            [*proc.WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--seconds", "2",
             "--stats-json", str(stats), "--hwdecode", "auto"],
            env=proc.env_for(tmp_path / "c"), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(stats.read_text())
    assert data["frames_presented"] > 0
    dec = data["decoder"]
    assert dec["hwdecode"] == "auto" and dec["codec"] == "h264"
    if dec["device"] == "software":
        assert dec["fallback_reason"]
