"""Wavry UDP relay: forwards leased sessions' datagrams between two peers
(docs/spec/CONTROL_PLANE.md §4).

- :mod:`wavry.relay.wire` — 20-byte relay header and payload codecs.
- :mod:`wavry.relay.server` — the asyncio UDP relay.
- :mod:`wavry.relay.http` — ``/health``, ``/ready``, ``/metrics``.
- :mod:`wavry.relay.registration` — registration and heartbeats with the gateway.
- :mod:`wavry.relay.cli` — ``wavry relay``.
"""
