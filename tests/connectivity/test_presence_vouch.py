"""How long the gateway's word for a client lasts on the host (CONTROL_PLANE.md §2, §6): from
its ``connect`` for VOUCH_TTL_S, kept while the client has a session here (its reconnects need
no new introduction), gone VOUCH_TTL_S after its last session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wavry.connectivity.presence import VOUCH_TTL_S, HostPresence


@dataclass
class _Session:
    client_id: str


@dataclass
class _Endpoint:
    sessions: dict[int, _Session] = field(default_factory=dict)


@dataclass
class _Ctx:
    endpoint: _Endpoint


def test_vouch_lasts_while_the_client_has_a_session() -> None:
    now = [0.0]
    p = HostPresence("http://gw.invalid", "studio", clock=lambda: now[0])
    ctx: Any = _Ctx(_Endpoint())
    p._ctx = ctx
    p.state.vouched["alice-laptop"] = now[0] + VOUCH_TTL_S
    assert p.vouches("alice-laptop") and not p.vouches("stranger")
    ctx.endpoint.sessions[7] = _Session("alice-laptop")
    for t in range(0, 3 * int(VOUCH_TTL_S), 30):  # an hour-long session, refreshed as it goes
        now[0] = float(t)
        p.refresh_vouches()
    assert p.vouches("alice-laptop")  # a reconnect now is still the gateway's client
    del ctx.endpoint.sessions[7]
    ended = now[0]
    now[0] = ended + VOUCH_TTL_S - 1
    p.refresh_vouches()
    assert p.vouches("alice-laptop")
    now[0] = ended + VOUCH_TTL_S + 31
    p.refresh_vouches()
    assert not p.vouches("alice-laptop") and "alice-laptop" not in p.state.vouched
