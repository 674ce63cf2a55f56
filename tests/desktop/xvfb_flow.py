"""Whole flows of the app on a real X server (Xvfb), run as a child process of
tests/desktop/test_flow_xvfb.py: Qt on xcb, the stream's SDL window on the same display.

    python tests/desktop/xvfb_flow.py SCENARIO SHOTS_DIR [ARGS...]

Prints one JSON object (what happened) as its last line; exit status 0 when the flow went
through. Scenarios:

- ``pairing``: app A shares this computer; app B types A's address and connects; B's pairing
  dialog opens, A shows the code with B's name and ID, the code is typed into B's dialog and Pair
  pressed; the stream window opens on the display and presents frames; B disconnects.
- ``gateway URL USER PASSWORD``: the first run signs in to a real gateway, the account's host
  comes online in Computers, Connect opens its stream window, which presents frames.
- ``hidpi``: the views at a 2× scale (a 4K screen's setting) for a screenshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.desktop.conftest import Desks, click, type_into, until  # noqa: E402


def x_windows(prefix: str) -> list[str]:
    """Titles of the windows on this display whose title starts with ``prefix`` (xwininfo: it
    lists SDL's windows too, which `xdotool search` does not find)."""
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    return [m for m in re.findall(r'^\s+0x[0-9a-f]+ "([^"]*)"', tree, re.M) if m.startswith(prefix)]


def save(widget: Any, shots: Path, name: str) -> None:
    widget.grab().save(str(shots / f"{name}.png"))


def screen(app: Any, shots: Path, name: str) -> None:
    """The whole X screen (Qt windows and the stream's SDL window alike)."""
    app.primaryScreen().grabWindow(0).save(str(shots / f"{name}.png"))


async def pairing(desks: Desks, shots: Path, result: dict[str, Any]) -> None:
    from tests.conftest import free_udp_port
    from wavry.desktop.dialogs import PairingCodeDialog
    from wavry.desktop.sharing import ShareState
    from wavry.settings import HostSettings

    a, b = desks("host-side", (1100, 720)), desks("client-side", (1100, 720))
    port = free_udp_port()
    share = {"source": "synthetic", "size": "640x360", "fps": 30, "audio": "off"}
    a.prefs.save(HostSettings, {**share, "listen": f"127.0.0.1:{port}", "name": "den"})
    a.window.setWindowTitle("Wavry (den)")
    a.window.show()
    a.window.move(0, 0)
    a.window.show_view("this_computer")
    b.window.show()
    b.window.move(180, 60)
    click(a.window.this_computer.toggle)
    await until(lambda: a.sharing.state is ShareState.on, 30, "A sharing")
    computers = b.window.computers
    type_into(computers.address, f"127.0.0.1:{port}")
    click(computers.go)
    await until(lambda: isinstance(computers.dialog, PairingCodeDialog), 30, "B's pairing dialog")
    this = a.window.this_computer
    await until(lambda: this.pairing_box.isVisible(), 20, "A's pairing request")
    b_id = b.window.this_computer.wavry_id.edit.text()
    result["request_names_client"] = b_id in this.pairing_text.text()
    code = this.pairing_code.text()
    save(a.window, shots, "flow-pairing-host")
    dialog = computers.dialog
    type_into(dialog.edit, code)
    click(dialog.ok)
    await until(lambda: b.stream.state == "streaming", 30, "B streaming")
    await until(lambda: x_windows("Wavry: den"), 20, "the stream window on the display")
    result["stream_window"] = x_windows("Wavry: den")
    shown: list[int] = []
    b.stream.stats.connect(lambda s: shown.append(int(s.get("frames_shown") or 0)))
    await until(lambda: len(shown) >= 3, 20, "three seconds of figures")
    result["frames_shown_per_second"] = shown[-3:]
    await until(lambda: this.clients.topLevelItemCount() == 1, 10, "B in A's clients")
    await asyncio.sleep(1.0)
    screen(b.app, shots, "flow-stream-window")
    save(b.window, shots, "flow-session")
    click(b.window.session.disconnect_button)
    await until(lambda: not b.stream.running, 15, "the stream to end")
    await until(lambda: this.clients.topLevelItemCount() == 0, 10, "A's clients to empty")
    result["window_closed"] = not x_windows("Wavry: den")
    result["trusted"] = [this.trusted.topLevelItem(i).toolTip(1)
                         for i in range(this.trusted.topLevelItemCount())]  # fmt: skip
    result["client_id"] = b_id


async def gateway(desks: Desks, shots: Path, result: dict[str, Any]) -> None:
    """Sign in through the first run, see the account's host come online, Connect."""
    url, user, password = sys.argv[3:6]
    d = desks("app", (1280, 800))
    d.start()
    fr = d.first_run
    click(fr.gateway)
    type_into(fr.url, url)
    click(fr.next)
    type_into(fr.form.login, user)
    type_into(fr.form.password, password)
    click(fr.form.sign_in_button)
    await until(lambda: d.account.signed_in and not fr.isVisible(), 30, "signed in")
    view = d.window.computers
    d.window.show_view("computers")

    def den() -> Any:
        from PySide6.QtCore import Qt

        # the account's row (the host is on this LAN too: mDNS lists it under "On this
        # network" as well, and that row may come first)
        found = view.tree.findItems("den", Qt.MatchFlag.MatchExactly, 0)
        mine = [i for i in found if i.text(1) == "your account"]
        return mine[0] if mine and mine[0].text(2) == "online" else None

    await until(den, 40, "the host online in the list")
    result["listed"] = [den().text(c) for c in range(3)]
    view.tree.setCurrentItem(den())
    save(d.window, shots, "flow-computers-online")
    click(view.connect_button)
    await until(lambda: d.stream.state == "streaming", 40, "streaming")
    await until(lambda: x_windows("Wavry: den"), 20, "the stream window on the display")
    result["stream_window"] = x_windows("Wavry: den")
    shown: list[int] = []
    d.stream.stats.connect(lambda s: shown.append(int(s.get("frames_shown") or 0)))
    await until(lambda: len(shown) >= 3, 20, "three seconds of figures")
    result["frames_shown_per_second"] = shown[-3:]
    result["path"] = d.window.session.fields["path"].text()
    click(d.window.session.disconnect_button)
    await until(lambda: not d.stream.running, 15, "the stream to end")
    result["stream_error"] = d.stream.error


async def hidpi(desks: Desks, shots: Path, result: dict[str, Any]) -> None:
    d = desks("a", (1280, 800))
    d.window.show()
    await asyncio.sleep(0.5)
    for view in ("computers", "this_computer", "settings"):
        d.window.show_view(view)
        await asyncio.sleep(0.3)
        save(d.window, shots, f"hidpi-{view.replace('_', '-')}")
    result["device_pixel_ratio"] = d.window.devicePixelRatioF()
    result["size"] = [d.window.width(), d.window.height()]


SCENARIOS = {"pairing": pairing, "gateway": gateway, "hidpi": hidpi}


def main() -> int:
    scenario, shots = sys.argv[1], Path(sys.argv[2])
    shots.mkdir(parents=True, exist_ok=True)
    base = Path(os.environ["WAVRY_FLOW_TMP"])
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["wavry-flow"])
    from wavry.desktop.app import make_loop

    desks = Desks(base)
    desks.loop = make_loop(app)
    result: dict[str, Any] = {"scenario": scenario}
    started = time.monotonic()
    code = 0
    try:
        desks.loop.run_until_complete(
            asyncio.wait_for(SCENARIOS[scenario](desks, shots, result), 180)
        )
    except Exception as exc:  # the result line says what failed
        result["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    finally:
        result["seconds"] = round(time.monotonic() - started, 1)
        desks.close()
        del app
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
