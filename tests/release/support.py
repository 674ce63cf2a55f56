"""What the release tests share: paths, the build time budget, the images' description."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# First run on a new machine: debootstrap (~2 min), the two stand-ins' apt installs and the
# services' pip install (a few minutes). Later runs reuse podman's cache (seconds).
BUILD_TIMEOUT = 1800


@dataclass(frozen=True)
class Images:
    conf: str
    env: dict[str, str]
    version: str
    gateway: str
    relay: str
