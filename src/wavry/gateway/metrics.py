"""Prometheus metrics of one gateway instance (own registry, so several apps can coexist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "wavry_gateway_signal_connections", "Open signaling sockets", registry=r
        )
        self.signal_messages = Counter(
            "wavry_gateway_signal_messages",
            "Signaling messages by type and direction",
            ["type", "direction"],
            registry=r,
        )
        self.auth = Counter(
            "wavry_gateway_auth", "Authentication outcomes", ["outcome"], registry=r
        )
        self.relays = Gauge(
            "wavry_gateway_relays", "Registered relays by state", ["state"], registry=r
        )
        self.lease_grants = Counter(
            "wavry_gateway_lease_grants", "Relay leases granted", registry=r
        )
        self.rate_limited = Counter(
            "wavry_gateway_rate_limited", "Requests refused by rate limits", ["scope"], registry=r
        )
        self.loop_lag = Histogram(
            "wavry_gateway_event_loop_lag_seconds",
            "Event-loop lag: overshoot of a 20 ms sleep",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
