"""The keep-alive while input is held (wavry.client.input), on a fake clock: at least every
100 ms while anything is held, nothing when nothing is."""

from __future__ import annotations

from wavry.client.input import InputFeature
from wavry.runtime.messages import KeyInput


def test_keepalive_only_while_held() -> None:
    held = {"on": False}
    pings: list[float] = []
    now = {"t": 0.0}
    sent: list[object] = []
    f = InputFeature(sent.append, lambda: pings.append(now["t"]), lambda: held["on"])
    assert f.next_timer() is None
    f.send([KeyInput(30, True)], 0.0)
    held["on"] = True
    t = 0.0
    while t < 1.0:
        t = round(t + 0.01, 2)
        now["t"] = t
        due = f.next_timer()
        if due is not None and due <= t:
            f.on_timer(t)
    assert len(pings) >= 9  # 10 Hz (on this 10 ms test tick)
    assert max(b - a for a, b in zip([0.0, *pings], pings, strict=False)) <= 0.11 + 1e-9
    held["on"] = False
    f.send([KeyInput(30, False)], 1.0)
    assert f.next_timer() is None and len(sent) == 2
