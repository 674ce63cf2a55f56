"""Every media and input backend probe in one list, for runtimes and ``wavry doctor``."""

from __future__ import annotations

from wavry.media import synthetic, virtual, wayland, x11
from wavry.media.encode import probe_encoder, probe_hardware_h264
from wavry.platform import uinput, xtest
from wavry.platform.probe import ProbeResult

__all__ = ["all_probes", "capture_probes", "encoder_probes", "input_probes"]


def capture_probes(display: str | None = None) -> list[ProbeResult]:
    return [synthetic.probe(), x11.probe(display), virtual.probe(), wayland.probe()]


def encoder_probes() -> list[ProbeResult]:
    """Hardware H.264 first (opened for real), then the software encoders."""
    results = probe_hardware_h264().probes
    names = {r.name for r in results}
    for name in ("libx264", "libx265", "libsvtav1"):
        if name not in names:
            results.append(probe_encoder(name))
    if "gst:x264enc" not in names:
        from wavry.media.gst_encode import probe_gst_encoder

        results.append(probe_gst_encoder("x264enc"))  # the GStreamer encoder path, in software
    return results


def input_probes(display: str | None = None) -> list[ProbeResult]:
    return [xtest.probe(display), uinput.probe()]


def all_probes(display: str | None = None) -> list[ProbeResult]:
    return capture_probes(display) + encoder_probes() + input_probes(display)


if __name__ == "__main__":
    for result in all_probes():
        print(result.line())
