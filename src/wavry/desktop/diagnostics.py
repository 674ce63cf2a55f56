"""The Diagnostics view: `wavry doctor`'s probes (:func:`wavry.doctor.run_doctor`) with status,
detail and the remedy for what does not work, run again on demand. The probes open encoders and
talk to servers for real, so they run on a worker thread and the window stays responsive."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wavry.desktop.widgets import Banner, run_task, title

__all__ = ["DiagnosticsView"]

STATUS = {
    "ok": ("works", QColor("#188038")),
    "unavailable": ("not available", QColor("#b06000")),
    "error": ("probe failed", QColor("#c5221f")),
}


class DiagnosticsView(QWidget):
    def __init__(self, display: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.display = display
        self.results: list[Any] = []
        self.running = False
        self.ran_at: float | None = None
        lay = QVBoxLayout(self)
        lay.addWidget(title("Diagnostics"))
        lay.addWidget(
            QLabel(
                "What this computer can use to share its screen and to show others' — capture, "
                "encoders, decoders, input, audio, clipboard, network — and how to fix what "
                "it cannot (the same probes as `wavry doctor`)."
            )
        )
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
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Probe", "Status", "Detail"])
        self.tree.setWordWrap(True)
        self.tree.setAccessibleName("Probe results")
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        lay.addWidget(self.tree, 1)

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
            from wavry.doctor import run_doctor

            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, run_doctor, self.display)

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
        self.tree.clear()
        order = {"error": 0, "unavailable": 1, "ok": 2}
        for r in sorted(results, key=lambda r: order.get(r.status, 3)):
            text, color = STATUS.get(r.status, (r.status, QColor("#5f6368")))
            item = QTreeWidgetItem([r.name, text, r.detail])
            item.setForeground(1, QBrush(color))
            item.setToolTip(2, r.detail)
            if r.status != "ok" and r.remedy:
                fix = QTreeWidgetItem([f"How to fix: {r.remedy}"])
                fix.setFirstColumnSpanned(True)
                fix.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                item.addChild(fix)
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
            fix_row = item.child(0)
            if fix_row is not None:
                fix_row.setFirstColumnSpanned(True)
        ok = sum(r.status == "ok" for r in results)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.ran_at))
        self.summary.setText(
            f"{ok} of {len(results)} probes work; {len(results) - ok} need attention "
            f"(run at {stamp})."
        )
