"""`wavry doctor`: probes with a status and a remedy each."""

from __future__ import annotations

import json
import subprocess
import sys

from wavry import doctor
from wavry.platform.probe import ProbeResult


def test_doctor_json_lists_probes_with_status_and_remedy() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "wavry", "doctor", "--json", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    probes = json.loads(r.stdout)["probes"]
    assert len(probes) >= 6
    names = {p["name"] for p in probes}
    assert {"libx264", "uinput", "xtest", "audio-server", "clipboard", "udp-bind"} <= names
    for p in probes:
        assert set(p) == {"name", "status", "detail", "remedy"}
        assert p["status"] in ("ok", "unavailable", "error")
        if p["status"] != "ok":
            assert p["remedy"], p
    x264 = next(p for p in probes if p["name"] == "libx264")
    assert x264["status"] == "ok" and "encoded" in x264["detail"]


def test_doctor_table_and_broken_probe_is_error() -> None:
    def boom() -> list[ProbeResult]:
        raise RuntimeError("kaput")

    [err] = doctor._guard("boom", boom)
    assert err.status == "error" and "kaput" in err.detail and err.remedy
    table = doctor.render_table(
        [err, doctor._from_result(ProbeResult("uinput", False, "/dev/uinput does not exist"))]
    )
    assert "modprobe uinput" in table and "udev" in table and "0/2 probes ok" in table


def test_doctor_on_a_virtual_display_finds_xtest_and_clipboard() -> None:
    from wavry.platform.xvfb import XvfbServer

    with XvfbServer(320, 240).start() as server:
        r = subprocess.run(
            [sys.executable, "-m", "wavry", "doctor", "--json", "-"],
            capture_output=True, text=True, timeout=60, check=False, env=server.env(),
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    probes = {p["name"]: p for p in json.loads(r.stdout)["probes"]}
    assert probes["xtest"]["status"] == "ok"
    assert probes["x11"]["status"] == "ok"
    clip = probes["clipboard"]
    assert clip["status"] == "ok" and "XFIXES selection events" in clip["detail"], clip
