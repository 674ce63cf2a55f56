"""The live session panel, while a stream runs: end-to-end latency p50/p95 over the last minute,
the per-stage times of the last second, bitrate, loss, FEC repairs, round trip and the path
(direct, punched or relayed) — every figure as the stream measured it on the frames it showed
(the ``stats`` events of `wavry connect --events-json`)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wavry.desktop.plot import LatencyPlot
from wavry.desktop.streaming import StreamController
from wavry.desktop.widgets import short_id, title

__all__ = ["STAGES", "SessionPanel"]

STAGES = (
    ("capture", "Capture (host)"),
    ("encode", "Encode (host)"),
    ("network", "Network"),
    ("queue", "Queue"),
    ("decode", "Decode"),
    ("convert", "Convert"),
    ("wait", "Wait for the window"),
    ("show", "Show"),
)
PATH_TEXT = {
    "direct": "direct (to the host's address)",
    "punched": "punched (direct, through NATs)",
    "relayed": "relayed (no direct path worked)",
}


def _ms(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1f} ms"


class SessionPanel(QWidget):
    def __init__(self, stream: StreamController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stream = stream
        self.last: dict[str, Any] = {}
        lay = QVBoxLayout(self)
        head = QHBoxLayout()
        self.heading = title("Live session")
        self.disconnect_button = QPushButton("Disconnect")
        self.disconnect_button.setAccessibleName("Disconnect the stream")
        self.disconnect_button.clicked.connect(stream.stop)
        head.addWidget(self.heading, 1)
        head.addWidget(self.disconnect_button)
        lay.addLayout(head)
        self.subtitle = QLabel("No stream is open. Connect to a computer to see its figures here.")
        self.subtitle.setWordWrap(True)
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.subtitle)

        plot_box = QGroupBox("End-to-end latency (capture on the host → shown here), last minute")
        pl = QVBoxLayout(plot_box)
        self.plot = LatencyPlot()
        pl.addWidget(self.plot)
        lay.addWidget(plot_box, 3)

        row = QHBoxLayout()
        figures = QGroupBox("Last second")
        form = QFormLayout(figures)
        self.fields: dict[str, QLabel] = {}
        for key, label in (
            ("latency", "End-to-end p50 / p95"),
            ("frames", "Frames shown / dropped"),
            ("bitrate", "Bitrate"),
            ("loss", "Packet loss"),
            ("fec", "FEC repairs (session)"),
            ("rtt", "Round trip"),
            ("path", "Path"),
            ("congestion", "Rate control"),
            ("state", "State"),
        ):
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAccessibleName(label)
            value.setWordWrap(True)  # the path's explanation at 1280 pixels and below
            form.addRow(label, value)
            self.fields[key] = value
        row.addWidget(figures, 1)
        stages = QGroupBox("Per stage (p50 of the last second)")
        grid = QGridLayout(stages)
        self.stage_bars: dict[str, QProgressBar] = {}
        self.stage_values: dict[str, QLabel] = {}
        for i, (key, label) in enumerate(STAGES):
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(False)
            bar.setMaximumHeight(12)
            bar.setAccessibleName(f"{label} time")
            value = QLabel("–")
            value.setMinimumWidth(self.fontMetrics().horizontalAdvance("000.0 ms"))
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(QLabel(label), i, 0)
            grid.addWidget(bar, i, 1)
            grid.addWidget(value, i, 2)
            self.stage_bars[key] = bar
            self.stage_values[key] = value
        grid.setColumnStretch(1, 1)
        row.addWidget(stages, 1)
        lay.addLayout(row, 2)

        stream.connected.connect(self.on_connected)
        stream.stats.connect(self.on_stats)
        stream.state_changed.connect(self.on_state)
        self.disconnect_button.setEnabled(False)

    # ---- what the stream reports --------------------------------------------------------

    def on_state(self, state: str, detail: str) -> None:
        self.fields["state"].setText(state + (f" ({detail})" if detail else ""))
        running = self.stream.running
        self.disconnect_button.setEnabled(running)
        if state == "connecting":
            self.plot.clear()
            self.heading.setText(f"Connecting to {self.stream.label}…")
            self.subtitle.setText("Waiting for the host to answer.")
        elif state == "closed":
            self.heading.setText("Live session (ended)")
            self.subtitle.setText(
                (f"The stream ended: {detail}" if detail else "The stream ended.")
                + " The figures below are its last ones."
            )

    def on_connected(self, info: dict[str, Any]) -> None:
        name = info.get("host_name") or self.stream.label
        self.heading.setText(f"Live session: {name}")
        self.subtitle.setText(
            f"{name} ({short_id(str(info.get('host_id', '')))}) at {info.get('address', '?')}: "
            f"{info.get('codec', '?')} {info.get('width')}×{info.get('height')} at "
            f"{info.get('fps')} fps; handshake {_ms(info.get('handshake_ms'))}. "
            "The picture is in its own window."
        )

    def on_stats(self, s: dict[str, Any]) -> None:
        self.last = s
        t = float(s.get("t") or time.monotonic())
        p50, p95 = s.get("e2e_p50_ms"), s.get("e2e_p95_ms")
        self.plot.add(t, p50, p95)
        f = self.fields
        f["latency"].setText(f"{_ms(p50)} / {_ms(p95)}")
        f["frames"].setText(f"{s.get('frames_shown', 0)} / {s.get('frames_dropped', 0)}")
        f["bitrate"].setText(f"{float(s.get('bitrate_kbps') or 0) / 1000:.2f} Mbit/s")
        loss = s.get("loss_pct")
        f["loss"].setText("–" if loss is None else f"{float(loss):.2f} %")
        f["fec"].setText(str(s.get("fec_recovered", "–")))
        f["rtt"].setText(_ms(s.get("rtt_ms")))
        path = str(s.get("path") or "")
        relay = f", relay {s['relay']}" if s.get("relay") else ""
        f["path"].setText((PATH_TEXT.get(path, path) or "–") + relay)
        f["congestion"].setText(str(s.get("congestion") or "–"))
        f["state"].setText(str(s.get("state") or "–"))
        stages = s.get("stages_ms") or {}
        top = max([float(v) for v in stages.values() if v is not None] + [1.0])
        for key, bar in self.stage_bars.items():
            v = stages.get(key)
            bar.setValue(0 if v is None else round(1000 * float(v) / top))
            self.stage_values[key].setText(_ms(v))
