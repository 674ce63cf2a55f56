"""Host policy on a fake clock: the per-session latency windows (issue 16 item 11) and the
encoder's backlog gate (frames skipped while earlier ones still leave, counted)."""

from __future__ import annotations

import threading

from wavry.host.link import BacklogGate
from wavry.host.notices import HostNotice, LatencyWindow
from wavry.host.stats import WINDOW_S, StatsFeature
from wavry.runtime.features import PeerInfo
from wavry.runtime.messages import LatencyReport


def report(ms: float) -> LatencyReport:
    return LatencyReport(frame_id=1, total_us=int(ms * 1000))


def test_each_session_reports_its_own_latency() -> None:
    notices: list[HostNotice] = []
    stats = StatsFeature(notices.append)
    stats.on_accepted(PeerInfo(1, "a"), 0.0)
    for ms in (10.0, 12.0, 200.0):
        stats.on_event(1, report(ms), 1.0)
    stats.on_gone(1, "user", 2.0)
    # a new session right after: none of the old session's numbers
    stats.on_accepted(PeerInfo(2, "b"), 3.0)
    assert stats.next_timer() is None  # nothing reported yet
    stats.on_event(2, report(30.0), 4.0)
    stats.on_event(2, report(40.0), 5.0)
    assert stats.next_timer() == 3.0 + WINDOW_S
    stats.on_timer(3.0 + WINDOW_S)
    assert notices == [LatencyWindow(2, 35.0, 40.0, 2)]
    assert stats.last_window(2) == notices[0]


def test_two_sessions_at_once_keep_apart() -> None:
    notices: list[HostNotice] = []
    stats = StatsFeature(notices.append)
    stats.on_accepted(PeerInfo(1, "a"), 0.0)
    stats.on_accepted(PeerInfo(2, "b"), 0.0)
    stats.on_event(1, report(5.0), 1.0)
    stats.on_event(2, report(500.0), 1.0)
    stats.on_timer(WINDOW_S)
    assert sorted(notices, key=lambda n: n.peer) == [  # type: ignore[union-attr]
        LatencyWindow(1, 5.0, 5.0, 1),
        LatencyWindow(2, 500.0, 500.0, 1),
    ]


class BacklogLink:
    """The core's side: the queue's length, and its skip decision (counted, as the core
    counts frames_skipped_backlog)."""

    def __init__(self) -> None:
        self.backlog_s = 0.0
        self.core_skips = 0
        self.questions = 0

    def media_backlog_s(self, peers: object) -> float:
        return self.backlog_s

    def should_skip_frame(self, peers: object) -> bool:
        self.questions += 1
        skip = self.backlog_s > 0.5 / 50.0
        self.core_skips += skip
        return skip


def test_backlog_gate_skips_while_the_queue_is_long_and_counts_each_skip() -> None:
    link = BacklogLink()
    gate = BacklogGate(
        link,  # type: ignore[arg-type]
        lambda: [1],
        lambda: 50.0,  # 20 ms interval: skip while more than 10 ms is queued
    )

    def from_encode_thread() -> bool:

        answer: list[bool] = []
        t = threading.Thread(target=lambda: answer.append(gate.should_skip()))
        t.start()
        t.join(5)

        return answer[0]

    gate.update()  # nothing queued
    assert not from_encode_thread() and gate.skipped == 0
    link.backlog_s = 0.5  # a keyframe leaving at a bottleneck's rate
    gate.update()
    assert from_encode_thread() and gate.skipped == 1
    assert from_encode_thread() and gate.skipped == 2
    assert link.core_skips == 2  # the core counted exactly the frames not encoded
    link.backlog_s = 0.005  # drained below half an interval: encode again
    assert not from_encode_thread() and gate.skipped == 2
    questions = link.questions
    assert not from_encode_thread()  # and no more questions to the core
    assert link.questions == questions and link.core_skips == 2
