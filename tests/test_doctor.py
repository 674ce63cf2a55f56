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


def test_verdict_says_what_the_machine_can_do() -> None:
    from wavry.doctor import DoctorProbe, render_table, to_json
    from wavry.doctor_verdict import verdict

    probes = [
        DoctorProbe("synthetic", "ok", "always", ""),
        DoctorProbe("x11", "ok", "DISPLAY :1", ""),
        DoctorProbe("libx264", "ok", "", ""),
        DoctorProbe("decoder-h264", "ok", "", ""),
        DoctorProbe("xtest", "ok", "", ""),
        DoctorProbe("uinput", "unavailable", "/dev/uinput does not exist\nsecond line", "modprobe"),
        DoctorProbe("audio-server", "unavailable", "no sound server\npa_context failed", "start"),
    ]
    lines = [v.line() for v in verdict(probes, environ={"DISPLAY": ":1"})]
    assert "can    host: X11 (--display :N), the test pattern (--source synthetic)" in lines
    assert "can    connect in a window" in lines
    assert "can    apply a client's keyboard and mouse with XTest" in lines
    assert "cannot inject gamepads: /dev/uinput does not exist" in lines
    assert "cannot stream audio: no sound server" in lines
    table = render_table(probes)
    # a multi-line detail stays in its cell: every continuation line is indented to the column
    cont = [ln for ln in table.splitlines() if "second line" in ln or "pa_context" in ln]
    assert cont and all(ln.startswith(" " * 20) for ln in cont)
    assert to_json(probes)["verdict"][0] == {"can": True, "text": lines[0][7:]}
