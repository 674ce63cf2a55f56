"""The Wavry gateway: accounts, devices, signaling, relay registry and leases
(docs/spec/CONTROL_PLANE.md)."""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from wavry.gateway.app import create_app

        return create_app
    raise AttributeError(name)
