"""What changed on an X screen, as events: DAMAGE for pixels, XInput 2 raw motion for the
pointer, XFIXES for the cursor's shape.

The pointer is drawn into the picture by the capture (x11grab's ``draw_mouse``) and is not part
of the screen's pixels, so pixel damage alone would miss a mouse move: raw motion events (every
pointer move, the clients' injected ones too) and cursor-shape notifications cover it.

:class:`XChangeWatcher` owns its own X connection (python-xlib) next to x11grab's. The capture
thread waits on :meth:`fileno` (with ``select``), then calls :meth:`drain` to learn whether
anything inside the captured area changed, and :meth:`settle` right before it takes the picture:
the damage is cleared with a round trip, so a change after that point raises a new event and a
change before it is in the picture.
"""

from __future__ import annotations

import contextlib
from typing import Any

from wavry.media.types import CaptureError, CaptureLost
from wavry.platform.xdisplay import XDisplayError, open_display

__all__ = ["XChangeWatcher", "changes_problem"]

Region = tuple[int, int, int, int]


def _intersects(a: Region, b: Region) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def changes_problem(d: Any) -> str:
    """Why change events cannot be had on display ``d`` ("" when they can)."""
    missing = [e for e in ("DAMAGE", "XFIXES") if d.query_extension(e) is None]
    if missing:
        return f"the X server lacks {' and '.join(missing)}"
    return ""


class XChangeWatcher:
    """Change events of one X screen, filtered to ``region`` (x, y, width, height)."""

    def __init__(self, display: str, region: Region, auth: str | None = None) -> None:
        from Xlib import error as xerror
        from Xlib.ext import damage, xfixes, xinput

        self.region = region
        self.display = display
        try:
            self._d = open_display(display, auth)
        except XDisplayError as exc:
            raise CaptureError(str(exc)) from exc
        d = self._d
        self._closed_errors: tuple[type[BaseException], ...] = (
            xerror.ConnectionClosedError,
            OSError,
        )
        try:
            problem = changes_problem(d)
            if problem:
                raise CaptureError(problem)
            root = d.screen().root
            d.damage_query_version()  # required before any other DAMAGE request
            self._damage = root.damage_create(damage.DamageReportBoundingBox)
            self._damage_event = d.query_extension("DAMAGE").first_event + damage.DamageNotifyCode
            d.xfixes_query_version()
            d.xfixes_select_cursor_input(root, xfixes.XFixesDisplayCursorNotifyMask)
            # pointer moves: XInput 2 raw motion of every master pointer (no XInput 2: the
            # cursor then updates with the next pixel change or refresh)
            self.pointer_events = False
            if d.query_extension("XInputExtension") is not None:
                try:
                    d.xinput_query_version()
                    root.xinput_select_events([(xinput.AllMasterDevices, xinput.RawMotionMask)])
                    self.pointer_events = True
                except xerror.XError:
                    self.pointer_events = False
            d.sync()
        except self._closed_errors as exc:
            # the server went away while the watcher was being set up
            with contextlib.suppress(Exception):
                d.close()
            raise CaptureLost(f"the X display {display} went away") from exc
        except BaseException:
            d.close()
            raise
        self.events = 0

    def fileno(self) -> int:
        return int(self._d.fileno())

    def drain(self) -> bool:
        """Read every queued event without blocking; True if something in the region changed."""
        changed = False
        try:
            while self._d.pending_events():
                e = self._d.next_event()
                self.events += 1
                if e.type == self._damage_event:
                    a = e.area
                    if _intersects((a.x, a.y, a.width, a.height), self.region):
                        changed = True
                    else:
                        # clear it now, so later damage inside the region raises an event
                        self._d.damage_subtract(self._damage, 0, 0)
                else:
                    # raw motion (a GenericEvent) or a new cursor shape
                    changed = True
        except self._closed_errors as exc:
            raise CaptureLost(f"the X display {self.display} went away") from exc
        return changed

    def settle(self) -> None:
        """Clear the damage before a picture is taken (one round trip to the server)."""
        try:
            self._d.damage_subtract(self._damage, 0, 0)
            self._d.sync()
        except self._closed_errors as exc:
            raise CaptureLost(f"the X display {self.display} went away") from exc

    def close(self) -> None:
        # the server may already be gone: then there is nothing left to release
        with contextlib.suppress(Exception):
            self._d.damage_destroy(self._damage)
        with contextlib.suppress(Exception):
            self._d.close()
