"""The client runtime's public values: what a front-end (the CLI, the desktop app, a web
endpoint) hands :class:`wavry.client.runtime.ClientRuntime` and gets back."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wavry.client.live import LiveFigures
from wavry.client.pipeline import ReadyFrame
from wavry.runtime.session import Prompts, SessionFailed

__all__ = ["ClientCallbacks", "ClientResult", "Interrupted"]


class Interrupted(SessionFailed):
    """stop() (Ctrl+C) came before the session was set up."""


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(slots=True)
class ClientCallbacks:
    say: Callable[[str], None] = _stderr
    on_state: Callable[[str, str], None] | None = None  # (state, detail)
    on_stats: Callable[[LiveFigures], None] | None = None
    prompts: Prompts = field(default_factory=Prompts)
    #: every shown frame with its wall-clock show time (benchmarks read the picture)
    on_frame_shown: Callable[[ReadyFrame, float], None] | None = None


@dataclass(slots=True)
class ClientResult:
    summary: dict[str, Any]
    ended: str  # why the session ended early ("" when it ran its course or was stopped)
    interrupted: bool = False
