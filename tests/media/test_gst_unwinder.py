"""GStreamer loaded through wavry.media.gst must not break C++ exceptions in later extension
modules (libunwind interposing libgcc's unwinder; see wavry.media.gst). Runs in a subprocess:
the failure mode is a segfault."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wavry.media.wayland import gstreamer_problem

pytestmark = pytest.mark.skipif(
    bool(gstreamer_problem(("videoconvert", "appsink"))),
    reason=gstreamer_problem(("videoconvert", "appsink")) or "ok",
)

SCRIPT = """
from wavry.media.gst import gst
Gst = gst()
p = Gst.parse_launch("videotestsrc num-buffers=3 ! videoconvert ! appsink sync=false")
p.set_state(Gst.State.PLAYING)
p.get_bus().timed_pop_filtered(5 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
p.set_state(Gst.State.NULL)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot  # pybind11's ft2font raises (and catches) a C++ exception on import
print("survived")
"""


def test_cpp_exceptions_survive_a_gstreamer_pipeline() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "survived" in out.stdout
