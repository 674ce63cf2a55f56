"""Backend probes: can this backend run here, and if not, why and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of asking a backend whether it can run on this machine.

    ``detail`` says what was found (or what failed); ``remedy`` is an action a user can take when
    ``ok`` is false (empty when there is nothing to do).
    """

    name: str
    ok: bool
    detail: str
    remedy: str = ""

    def line(self) -> str:
        """One human-readable line, as ``wavry doctor`` prints it."""
        state = "ok" if self.ok else "unavailable"
        text = f"{self.name}: {state} — {self.detail}"
        if not self.ok and self.remedy:
            text += f" (fix: {self.remedy})"
        return text
