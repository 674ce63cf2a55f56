"""Clipboard text between the host's X display and the page (async Clipboard API, permissions
granted as a user would): a copy on the host lands in the page's clipboard; the page's
"Send clipboard" puts the page's clipboard text on the host's display. The other X client is
wavry's own X11 clipboard (`ClipboardSync`), standing for an application on the host."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from wavry.platform.clipboard import ClipboardSync
from wavry.platform.xvfb import XvfbServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is needed"),
]


def test_clipboard_both_ways(chromium: Any, web: Any, tmp_path: Path) -> None:
    server = XvfbServer(320, 240).start()
    got: list[str] = []
    app = ClipboardSync(got.append, display=server.display, auth=str(server.auth_file)).start()
    try:
        args = ("--source", "x11", "--display", server.display, "--fps", "30", "--trust", "any")
        with web.host(tmp_path, *args, env={"XAUTHORITY": str(server.auth_file)}) as host:
            page = web.open_page(chromium, host.link())
            page.context.grant_permissions(["clipboard-read", "clipboard-write"])
            try:
                web.wait_stats(
                    page, lambda s: s.get("framesDecoded", 0) >= 1
                )  # X11: captured on change
                host.wait_for(r"clipboard sync on")
                page.bring_to_front()
                page.click("#screen")  # the page has focus: it may write the clipboard
                # host → page
                app.set_remote_text("copied on the host ✓")
                deadline = time.monotonic() + 15
                text = ""
                while time.monotonic() < deadline and text != "copied on the host ✓":
                    text = page.evaluate("navigator.clipboard.readText()")
                    time.sleep(0.1)
                assert text == "copied on the host ✓"
                # page → host
                page.evaluate("navigator.clipboard.writeText('from the browser ✓')")
                page.click("#btn-clip")
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and "from the browser ✓" not in got:
                    time.sleep(0.1)
                assert "from the browser ✓" in got, got
            finally:
                page.context.close()
    finally:
        app.close()
        server.stop()
