"""An animated Wayland client (GTK 3) for tests and benchmarks: ``python -m
wavry.testing.wayland_client`` (``--x11`` runs the same window on an X server, ``--fps=N``
sets how often it redraws, 45 by default).

It opens one fullscreen window and, on every frame the compositor asks for, paints the marker of
:mod:`wavry.media.marker` (an increasing frame id and the wall-clock time of drawing, µs) in its
top-left corner, so a picture that went compositor → capture → encoder → RIFT → decoder tells
which frame it was and how long ago it was drawn. It also reports, one line each on stdout:

- ``ready`` once the window is on screen;
- ``focus`` when the window gets the keyboard focus;
- ``key <evdev code> <keyval name>`` for every key press it receives;
- ``button <n> <x> <y>`` for every button press (window coordinates), ``scroll <direction>``;
- ``clipboard <base64 text>`` when asked (``paste`` on stdin) or when the clipboard changes.

Commands on stdin, one per line: ``copy <base64 text>`` (own the clipboard with that text),
``paste`` (report the clipboard text), ``quit``.
"""

from __future__ import annotations

import base64
import sys
import time
from typing import Any

import gi  # type: ignore[import-untyped]

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GLib, Gtk  # type: ignore[import-untyped]  # noqa: E402

from wavry.media.marker import MARKER_BITS, marker_bits, marker_layout  # noqa: E402

EVDEV_OFFSET = 8  # XKB keycodes are evdev codes + 8
DEFAULT_FPS = 45.0


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _on_wayland() -> bool:
    display = Gdk.Display.get_default()
    return display is not None and "Wayland" in type(display).__name__


class MarkerWindow:
    def __init__(self, fps: float) -> None:
        self.frame_id = 0
        self.window = Gtk.Window(title="wavry marker client")
        self.area = Gtk.DrawingArea()
        self.window.add(self.area)
        self.area.connect("draw", self.on_draw)
        self.window.connect("key-press-event", self.on_key)
        self.window.connect("focus-in-event", self.on_focus)
        # smooth too: KWin's fake input sends axis values without discrete steps
        self.area.add_events(
            Gdk.EventMask.BUTTON_PRESS_MASK
            | Gdk.EventMask.SCROLL_MASK
            | Gdk.EventMask.SMOOTH_SCROLL_MASK
        )
        self.area.connect("button-press-event", self.on_button)
        self.area.connect("scroll-event", self.on_scroll)
        self.window.connect("destroy", lambda *_: Gtk.main_quit())
        # redraw on a timer, not on every frame the compositor offers: a software-rendered
        # compositor on a busy machine that is asked for every frame has no time left for its
        # D-Bus requests (the screen cast and input calls)
        GLib.timeout_add(max(1, round(1000 / fps)), self.on_timer)
        self.clipboard = Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD)
        self.clipboard.connect("owner-change", lambda *_: self.report_clipboard())
        self.ready = False
        self.window.fullscreen()
        display = Gdk.Display.get_default()
        if display is not None and not _on_wayland():
            # an X server without a window manager ignores fullscreen: cover the screen
            area = display.get_monitor(0).get_geometry()
            self.window.set_decorated(False)
            self.window.set_default_size(area.width, area.height)
            self.window.move(0, 0)
        self.window.show_all()
        channel = GLib.IOChannel.unix_new(sys.stdin.fileno())
        GLib.io_add_watch(channel, GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP, self.on_stdin)

    def on_timer(self) -> bool:
        self.area.queue_draw()
        return True

    def on_draw(self, widget: Any, cr: Any) -> bool:
        width = widget.get_allocated_width()
        height = widget.get_allocated_height()
        cr.set_source_rgb(0.25, 0.3, 0.35)
        cr.paint()
        # something that moves everywhere, so every frame has damage
        x = (self.frame_id * 7) % max(1, width - 64)
        cr.set_source_rgb(0.9, 0.6, 0.1)
        cr.rectangle(x, height // 2, 64, 64)
        cr.fill()
        if width >= 128:
            lay = marker_layout(width)
            bits = marker_bits(self.frame_id, time.time_ns() // 1000)
            cr.set_source_rgb(0, 0, 0)
            cr.rectangle(0, 0, lay.width, lay.height)
            cr.fill()
            cr.set_source_rgb(1, 1, 1)
            for i in range(MARKER_BITS):
                if bits[i]:
                    row, col = divmod(i, lay.per_row)
                    cr.rectangle(col * lay.block, row * lay.block, lay.block, lay.block)
            cr.fill()
        self.frame_id += 1
        if not self.ready:
            self.ready = True
            _say(f"ready {width}x{height}")
        return True

    def on_focus(self, *_: Any) -> bool:
        _say("focus")
        return False

    def on_button(self, _widget: Any, event: Any) -> bool:
        _say(f"button {event.button} {event.x:.0f} {event.y:.0f}")
        return False

    def on_scroll(self, _widget: Any, event: Any) -> bool:
        names = {
            Gdk.ScrollDirection.UP: "up",
            Gdk.ScrollDirection.DOWN: "down",
            Gdk.ScrollDirection.LEFT: "left",
            Gdk.ScrollDirection.RIGHT: "right",
        }
        direction = names.get(event.direction)
        if direction is None:  # smooth scrolling: report the sign of the delta
            _ok, dx, dy = event.get_scroll_deltas()
            if dy:
                direction = "down" if dy > 0 else "up"
            elif dx:
                direction = "right" if dx > 0 else "left"
        if direction:
            _say(f"scroll {direction}")
        return False

    def on_key(self, _widget: Any, event: Any) -> bool:
        name = Gdk.keyval_name(event.keyval) or "?"
        _say(f"key {event.hardware_keycode - EVDEV_OFFSET} {name}")
        return True

    def report_clipboard(self) -> None:
        def got(_cb: Any, text: str | None) -> None:
            data = (text or "").encode("utf-8")
            _say("clipboard " + base64.b64encode(data).decode("ascii"))

        self.clipboard.request_text(got)

    def on_stdin(self, channel: Any, condition: Any) -> bool:
        if condition & GLib.IO_HUP:
            Gtk.main_quit()
            return False
        line = sys.stdin.readline()
        if not line:
            Gtk.main_quit()
            return False
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "copy":
            text = base64.b64decode(arg).decode("utf-8")
            self.clipboard.set_text(text, -1)
            self.clipboard.store()
            _say("copied")
        elif cmd == "paste":
            self.report_clipboard()
        elif cmd == "quit":
            Gtk.main_quit()
            return False
        return True


def main() -> None:
    # Wayland by default; ``--x11`` for the X11 row of the latency bench (same window)
    Gdk.set_allowed_backends("x11" if "--x11" in sys.argv else "wayland")
    if not Gtk.init_check(sys.argv)[0]:
        print("error: cannot open the Wayland display", file=sys.stderr)
        raise SystemExit(1)
    fps = DEFAULT_FPS
    for arg in sys.argv[1:]:
        if arg.startswith("--fps="):
            fps = float(arg.split("=", 1)[1])
    MarkerWindow(fps)
    Gtk.main()


if __name__ == "__main__":
    main()
