"""The one token bucket (wavry.rift.ratelimit) and how the host uses it for handshakes."""

from __future__ import annotations

import ipaddress
import os

from wavry.rift.config import HostConfig
from wavry.rift.handshake import InitiatorHandshake, LocalStatic
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.noise import generate_static_key
from wavry.rift.ratelimit import KeyedRateLimiter, TokenBucket, source_key


def test_bucket_refills_at_its_rate_and_caps_at_its_burst() -> None:
    b = TokenBucket(rate=10, burst=2, now=0.0)
    assert b.take(0.0) and b.take(0.0) and not b.take(0.0)
    assert b.take(0.1)  # one token back after 100 ms
    assert not b.take(0.1)
    assert b.take(10.0) and b.take(10.0) and not b.take(10.0)  # never more than the burst


def test_time_going_backwards_neither_refills_nor_freezes() -> None:
    b = TokenBucket(rate=10, burst=1, now=100.0)
    assert b.take(100.0)
    assert not b.take(40.0)  # a step back 60 s: no refill...
    assert b.take(40.2)  # ...and no freeze: refills go on from the new time


def test_keyed_limiter_forgets_the_least_recently_used_key() -> None:
    lim = KeyedRateLimiter(rate=0, burst=1, max_keys=2)
    assert lim.allow("a", 0) and lim.allow("b", 0)
    assert not lim.allow("a", 0)
    assert lim.allow("c", 0)  # evicts "b" (least recently used)
    assert len(lim) == 2 and lim.allow("b", 0)  # "b" starts again with a full bucket


def test_a_keyed_limiter_counts_each_keys_refusals() -> None:
    lim = KeyedRateLimiter(rate=0, burst=2, max_keys=2)
    for _ in range(5):
        lim.allow("a", 0)
    lim.allow("b", 0)
    assert (lim.refused("a"), lim.refused("b"), lim.refused("never")) == (3, 0, 0)
    lim.allow("c", 0)  # forgets "a", the least recently used: its count goes with it
    assert lim.refused("a") == 0


def test_ipv6_sources_count_by_their_64_prefix() -> None:
    a, b = source_key("2001:db8:1:2::1"), source_key("2001:db8:1:2:ffff::9")
    assert a == b == ipaddress.ip_network("2001:db8:1:2::/64")
    assert source_key("2001:db8:1:3::1") != a
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "::ffff:192.0.2.7"


def _msg1() -> bytes:
    local = LocalStatic.create(Identity.generate(), generate_static_key(), "c")
    return InitiatorHandshake(local, os.urandom(12)).msg1


def test_one_flooding_source_cannot_take_the_global_budget() -> None:
    config = HostConfig(name="h")  # defaults: 10/s (burst 20) per source, 1000/s (250) in all
    host = HostEndpoint(Identity.generate(), config)
    now = 10.0
    for _ in range(2000):  # the flood: far more than its per-source burst
        host.receive_datagram(_msg1(), ("198.51.100.66", 4000), now)
    host.datagrams_to_send(now)
    started = host.counters.handshakes_started
    host.receive_datagram(_msg1(), ("192.0.2.10", 5000), now)
    out = host.datagrams_to_send(now)
    assert host.counters.handshakes_started == started + 1  # the other client still gets in
    assert [addr for _, addr in out] == [("192.0.2.10", 5000)]
