"""Control-plane pieces shared by the gateway and the relay.

- :mod:`wavry.controlplane.lease` — PASETO ``v4.public`` relay leases (mint, verify, key files).
- :mod:`wavry.controlplane.stun` — RFC 5389 STUN Binding responder.

The rate limiters both services use are the project's one token bucket
(:mod:`wavry.rift.ratelimit`), re-exported here.
"""

from __future__ import annotations

from wavry.rift.ratelimit import KeyedRateLimiter, TokenBucket

__all__ = ["KeyedRateLimiter", "TokenBucket"]
