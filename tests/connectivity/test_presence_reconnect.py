"""The host's signaling connection to the gateway is never reopened in a tight loop.

A gateway that closes the socket right after opening it (here: "replaced", what it says when
another process with this device's identity connects, which that process then hears in turn)
got the connection reopened at once, with no pause: two such hosts replaced each other as fast
as the round trips went, for as long as both ran. On a fake clock: connections that end at once
are retried with the back-off; one that ran for a while is reopened at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wavry.connectivity import presence
from wavry.connectivity.presence import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    STABLE_ONLINE_S,
    HostPresence,
)
from wavry.connectivity.signaling import SignalingClosed
from wavry.rift.identity import Identity


class _Ctx:
    def __init__(self) -> None:
        self.identity = Identity.generate()
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        self.lines.append(text)


def _run(
    monkeypatch: pytest.MonkeyPatch,
    lasts: float,
    opens: int,
    error: Exception | None = None,
    lines: list[str] | None = None,
) -> list[float]:
    """The pauses before each reconnect, over ``opens`` connections of ``lasts`` seconds, each
    ended by ``error`` (default: the gateway's "replaced")."""
    now = [0.0]
    pauses: list[float] = []
    count = [0]

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    class _Sig:
        async def recv(self) -> dict[str, Any]:
            now[0] += lasts
            raise error or SignalingClosed("replaced", "this device connected again")

        async def close(self) -> None:
            pass

    class _Signaling:
        @staticmethod
        async def open(*_args: Any, **_kw: Any) -> _Sig:
            count[0] += 1
            if count[0] > opens:
                raise asyncio.CancelledError
            return _Sig()

    monkeypatch.setattr(presence, "Signaling", _Signaling)
    p = HostPresence("http://gw.invalid", "studio", clock=lambda: now[0], sleep=sleep)
    ctx = _Ctx()
    p._ctx = ctx  # type: ignore[assignment]

    async def signed_in() -> None:
        p._token = "token"

    p._sign_in = signed_in  # type: ignore[method-assign]

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(p._run(), 5.0)

    asyncio.run(main())
    assert count[0] == opens + 1
    if lines is not None:
        lines.extend(ctx.lines)
    return pauses


@pytest.mark.timeout(30)
def test_a_connection_the_gateway_ends_at_once_is_retried_with_the_back_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses = _run(monkeypatch, lasts=0.0, opens=20)
    assert len(pauses) == 20  # a pause before every reopening
    assert pauses[0] >= 0.8 * BACKOFF_INITIAL_S
    assert all(p >= 0.8 * BACKOFF_INITIAL_S for p in pauses)
    assert max(pauses) <= 1.2 * BACKOFF_MAX_S
    assert sum(pauses) >= 15 * 0.8 * BACKOFF_MAX_S  # about one reopening per 2 s, not a storm


@pytest.mark.timeout(30)
def test_a_connection_that_ran_for_a_while_is_reopened_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _run(monkeypatch, lasts=STABLE_ONLINE_S + 1, opens=5) == []


@pytest.mark.timeout(30)
def test_an_unexpected_failure_of_the_connection_is_reconnected_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # anything but SignalingClosed used to end presence: the host stayed offline, silently
    lines: list[str] = []
    pauses = _run(monkeypatch, lasts=0.0, opens=3, error=RuntimeError("boom"), lines=lines)
    assert len(pauses) == 3
    lost = [line for line in lines if line.startswith("gateway connection lost")]
    assert len(lost) == 3 and "boom" in lost[0]
