"""The Diagnostics view: `wavry doctor`'s probes (:func:`wavry.doctor.run_doctor`) with status,
detail and the remedy for what does not work, run again on demand. The probes open encoders and
talk to servers for real (C libraries: GStreamer, hardware codecs, miniupnpc), so they run in a
`wavry doctor --json -` child process: the window stays responsive, and a library that crashes
takes the probe run down, never the app (a crash of the app with the probes on a worker thread
was seen once, in CI).

The results are a wrapped, selectable report (what needs attention first, each with its remedy,
then what works): details and remedies are sentences and commands, too long for table cells."""

from __future__ import annotations

import asyncio
import html
import json
import sys
import time
from typing import Any

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from wavry.desktop.widgets import Banner, run_task, title

__all__ = ["STATUS", "DiagnosticsView", "ProbesFailed", "report_html", "run_probes"]


class ProbesFailed(RuntimeError):
    """The probe process did not give its results (one line says why)."""


async def run_probes(display: str | None = None, timeout: float = 120.0) -> list[Any]:
    """`wavry doctor`'s probes, run in a child process; its results as ``DoctorProbe``s."""
    from wavry.doctor import DoctorProbe

    argv = [sys.executable, "-m", "wavry", "doctor", "--json", "-"]
    if display:
        argv += ["--display", display]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    rc = proc.returncode
    assert rc is not None
    if rc != 0:
        how = f"signal {-rc}" if rc < 0 else f"exit {rc}"
        last = (err.decode(errors="replace").strip().splitlines() or [""])[-1][:200]
        raise ProbesFailed(f"the probe process ended ({how}){': ' + last if last else ''}")
    try:
        probes = json.loads(out)["probes"]
        return [DoctorProbe(p["name"], p["status"], p["detail"], p["remedy"]) for p in probes]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProbesFailed(f"the probe process gave no readable results ({exc})") from None


STATUS = {
    "error": ("probe failed", "#c5221f"),
    "unavailable": ("not available", "#b06000"),
    "ok": ("works", "#188038"),
}


def report_html(results: list[Any]) -> str:
    """The probes as HTML: those that need attention (with "How to fix"), then those that work."""
    order = {"error": 0, "unavailable": 1, "ok": 2}
    rows = []
    attention = [r for r in results if r.status != "ok"]
    working = [r for r in results if r.status == "ok"]
    for heading, group in (("Needs attention", attention), ("Works", working)):
        if not group:
            continue
        rows.append(f"<h3>{heading} ({len(group)})</h3>")
        for r in sorted(group, key=lambda r: (order.get(r.status, 3), r.name)):
            text, color = STATUS.get(r.status, (r.status, "#5f6368"))
            rows.append(
                f"<p style='margin:6px 0 0 0'><b>{html.escape(r.name)}</b> — "
                f"<span style='color:{color}'>{text}</span>: {html.escape(r.detail)}</p>"
            )
            if r.status != "ok" and r.remedy:
                rows.append(
                    "<p style='margin:2px 0 0 18px'><i>How to fix:</i> "
                    f"<code>{html.escape(r.remedy)}</code></p>"
                )
    return "\n".join(rows)


class DiagnosticsView(QWidget):
    def __init__(self, display: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.display = display
        self.results: list[Any] = []
        self.running = False
        self.ran_at: float | None = None
        lay = QVBoxLayout(self)
        lay.addWidget(title("Diagnostics"))
        intro = QLabel(
            "What this computer can use to share its screen and to show others' — capture, "
            "encoders, decoders, input, audio, clipboard, network — and how to fix what it "
            "cannot (the same probes as `wavry doctor`)."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.banner = Banner()
        lay.addWidget(self.banner)
        row = QHBoxLayout()
        self.rerun = QPushButton("&Run the probes again")
        self.rerun.clicked.connect(self.run)
        self.summary = QLabel("Not run yet.")
        self.summary.setAccessibleName("Probe summary")
        row.addWidget(self.rerun)
        row.addWidget(self.summary, 1)
        lay.addLayout(row)
        self.report = QTextBrowser()
        self.report.setAccessibleName("Probe results")
        self.report.setOpenLinks(False)
        lay.addWidget(self.report, 1)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.ran_at is None and not self.running:
            self.run()

    def run(self) -> asyncio.Future[Any] | None:
        if self.running:
            return None
        self.running = True
        self.rerun.setEnabled(False)
        self.summary.setText("Probing… (encoders are opened for real: a few seconds)")

        async def probe() -> list[Any]:
            return await run_probes(self.display)

        task = run_task(probe(), self.banner, "running the probes", self.show_results)
        task.add_done_callback(lambda _t: self._finished())
        return task

    def _finished(self) -> None:
        self.running = False
        self.rerun.setEnabled(True)
        if self.ran_at is None:
            self.summary.setText("The probes could not run (see above).")

    def show_results(self, results: list[Any]) -> None:
        self.results = results
        self.ran_at = time.time()
        self.report.setHtml(report_html(results))
        ok = sum(r.status == "ok" for r in results)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.ran_at))
        self.summary.setText(
            f"{ok} of {len(results)} probes work; {len(results) - ok} need attention "
            f"(run at {stamp})."
        )
