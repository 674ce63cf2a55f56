"""The one token-bucket rate limiter (hosts, gateway and relay all use it). Sans-I/O: time is
passed in by the caller (monotonic seconds), and time going backwards never refills or drains.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["KeyedRateLimiter", "TokenBucket", "source_key"]


def source_key(host: object) -> Hashable:
    """The key a per-source limit counts under: an IPv4 address as it is, an IPv6 address by its
    /64 (one subscriber's prefix: rotating the interface id must not buy new budget)."""
    if not isinstance(host, str):
        return host if isinstance(host, Hashable) else repr(host)
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return ipaddress.ip_network(f"{ip}/64", strict=False)
    return host


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst`` tokens.

    Time is passed in by the caller (any monotonic seconds), so the bucket is deterministic.
    """

    __slots__ = ("burst", "rate", "refused", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst <= 0:
            raise ValueError("token bucket needs rate >= 0 and burst > 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now
        #: how many `take`s this bucket refused
        self.refused = 0

    def _refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:  # a step backwards refills nothing, and refills go on from the new time
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now

    def take(self, now: float, amount: float = 1.0) -> bool:
        """Take ``amount`` tokens if available; return whether they were taken."""
        self._refill(now)
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        self.refused += 1
        return False

    def reconfigure(self, rate: float, burst: float, now: float) -> None:
        """Change rate and burst, keeping the current fill (capped at the new burst)."""
        self._refill(now)
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = min(self.tokens, self.burst)


class KeyedRateLimiter:
    """One :class:`TokenBucket` per key (an IP, an identity), with bounded memory.

    At most ``max_keys`` buckets are kept; the least recently used one is forgotten first.
    A forgotten key starts again with a full bucket, so the bound trades a little precision
    for memory under very wide floods.
    """

    def __init__(self, rate: float, burst: float, max_keys: int = 16384) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def allow(self, key: Hashable, now: float, amount: float = 1.0) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, amount)

    def penalize(self, key: Hashable, amount: float, now: float) -> None:
        """Take ``amount`` tokens from ``key``'s bucket even below zero (down to ``-burst``):
        the key waits for the refill before it is allowed again."""
        if key not in self._buckets:
            self.allow(key, now, 0.0)
        bucket = self._buckets[key]
        bucket.take(now, 0.0)  # refill to now
        bucket.tokens = max(-bucket.burst, bucket.tokens - amount)

    def refused(self, key: Hashable) -> int:
        """How often ``key`` was refused since its bucket was made (0 for a key not tracked:
        unknown, or forgotten as the least recently used)."""
        bucket = self._buckets.get(key)
        return bucket.refused if bucket is not None else 0

    def __len__(self) -> int:
        return len(self._buckets)
