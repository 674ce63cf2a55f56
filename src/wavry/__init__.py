"""Wavry: low-latency remote desktop and game streaming over RIFT."""

__version__ = "0.1.0"
