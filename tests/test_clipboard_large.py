"""Clipboard text larger than one datagram: over the file-transfer path under the reserved name
(docs/protocol-notes.md), kept in memory, put on the clipboard, never echoed, capped.

Sans-I/O checks of the receiver first, then a real session: `wavry host --source x11` on Xvfb A,
a windowed `wavry connect` on Xvfb B, independent X clipboard clients on both displays.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wavry.files.transfer import CLIPBOARD_FILENAME, FileReceiver, FileTransfers, Role
from wavry.rift import rift_pb2

St = rift_pb2.FileStatus


def _run(ft: FileTransfers, rx: FileReceiver, text: str) -> list[Any]:
    """Drive a clipboard transfer sender → receiver; returns the receiver's results."""
    now = 0.0
    _s, out = ft.send_clipboard(text, now)
    for _ in range(500):
        now += 0.01
        replies = []
        for o in out:
            m = o.message
            if m.HasField("media"):
                replies += rx.on_chunk(0, m.media.file_chunk, now)
            elif m.control.HasField("file_header"):
                replies += rx.on_header(0, m.control.file_header, now)
        for r in replies:
            ft.handle(r.message, now)
        out = ft.poll(now, 8000, True)
        if not ft.sending:
            break
    return rx.take_results()


def test_large_text_arrives_in_memory_not_on_disk(tmp_path: Path) -> None:
    text = "Grüße, Wavry! " * 30_000  # 450 kB of UTF-8
    rx = FileReceiver(tmp_path / "out", Role.HOST, clipboard_max=1 << 20)
    ft = FileTransfers(Role.CLIENT, None)
    [res] = _run(ft, rx, text)
    assert res.ok and res.text == text and res.path is None
    assert res.name == CLIPBOARD_FILENAME
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    [sender] = ft.senders.values()
    assert sender.message == "clipboard updated"


def test_oversize_and_clipboard_off_are_refused_with_a_reason(tmp_path: Path) -> None:
    rx = FileReceiver(tmp_path / "out", Role.HOST, clipboard_max=100_000)
    ft = FileTransfers(Role.CLIENT, None)
    [res] = _run(ft, rx, "x" * 100_001)
    assert not res.ok
    assert res.message == (
        "refused: clipboard text of 100001 bytes is larger than the limit of 100000 bytes"
    )
    [sender] = ft.senders.values()
    assert sender.message == res.message
    off = FileReceiver(tmp_path / "out", Role.HOST)  # clipboard_max 0: no clipboard here
    [res2] = _run(FileTransfers(Role.CLIENT, None), off, "y" * 5000)
    assert not res2.ok and res2.message == "refused: clipboard sync is off here"
    assert not (tmp_path / "out").exists()


def test_invalid_utf8_is_refused(tmp_path: Path) -> None:
    from wavry.files.transfer import FileSender

    rx = FileReceiver(tmp_path, Role.HOST, clipboard_max=1 << 20)
    s = FileSender(
        Path(CLIPBOARD_FILENAME), 3, 0.0, name=CLIPBOARD_FILENAME, data=b"\xff\xfe" * 2000
    )
    [reply] = rx.on_header(0, s.header().control.file_header, 0.0)
    s.on_status(reply.message.control.file_status, 0.0)
    out = []
    for o in s.poll(1.0, 0, 1e6):
        out += rx.on_chunk(0, o.message.media.file_chunk, 1.0)
    assert out[-1].message.control.file_status.status == St.ERROR
    [res] = rx.take_results()
    assert not res.ok and "not valid UTF-8" in res.message


# ---- a real session on two X displays -------------------------------------------------------

needs_x = pytest.mark.skipif(
    subprocess.run(["which", "Xvfb"], capture_output=True).returncode != 0,
    reason="Xvfb is needed (scripts/setup.sh installs it)",
)


class _Lines:
    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def wait(self, pattern: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in list(self.lines)):
                return True
            time.sleep(0.05)
        return False

    def text(self) -> str:
        return "".join(self.lines)


@pytest.fixture(scope="module")
def session(tmp_path_factory: Any) -> Iterator[tuple[Any, Any, _Lines, _Lines]]:
    from wavry.platform.xvfb import XvfbServer

    a = XvfbServer(640, 480).start()
    b = XvfbServer(640, 480).start()
    home = tmp_path_factory.mktemp("clip")
    host = client = None
    try:
        env_a = dict(os.environ, XDG_CONFIG_HOME=str(home / "h"), PYTHONUNBUFFERED="1")
        env_a.update(a.env())
        host = subprocess.Popen(
            [sys.executable, "-m", "wavry", "host", "--listen", "127.0.0.1:0", "--trust", "any",
             "--source", "x11", "--display", a.display, "--fps", "30",
             "--clipboard-max-bytes", "400000"],
            env=env_a, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        hl = _Lines(host.stdout)
        assert hl.wait(r"listening on udp://", 20), hl.text()
        m = re.search(r"listening on udp://127\.0\.0\.1:(\d+)", hl.text())
        assert m
        env_b = dict(os.environ, XDG_CONFIG_HOME=str(home / "c"), PYTHONUNBUFFERED="1",
                     SDL_VIDEODRIVER="x11")  # fmt: skip
        env_b.pop("WAYLAND_DISPLAY", None)
        env_b.update(b.env())
        client = subprocess.Popen(
            [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{m.group(1)}",
             "--seconds", "120"],
            env=env_b, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        cl = _Lines(client.stderr)
        assert cl.wait(r"clipboard sync on", 30), cl.text()
        assert hl.wait(r"clipboard sync on", 20), hl.text()
        time.sleep(1.0)
        yield a, b, hl, cl
    finally:
        for p in (client, host):
            if p is not None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        a.stop()
        b.stop()


def _sync(server: Any, seen: list[str]) -> Any:
    from wavry.platform.clipboard import ClipboardSync

    return ClipboardSync(
        seen.append, server.display, str(server.auth_file), max_bytes=4 << 20
    ).start()


def _wait(seen: list[str], text: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in seen:
            return True
        time.sleep(0.02)
    return False


@needs_x
def test_300kb_both_ways_intact_and_no_echo(session: Any) -> None:
    a, b, hl, cl = session
    seen_a: list[str] = []
    seen_b: list[str] = []
    on_a, on_b = _sync(a, seen_a), _sync(b, seen_b)
    try:
        big = "".join(f"line {i:06d} äöü €\n" for i in range(13_000))  # ~300 kB UTF-8
        assert 290_000 < len(big.encode()) < 320_000
        assert on_a.set_remote_text(big)  # copied on the host's desktop
        assert _wait(seen_b, big), cl.text()[-2000:] + hl.text()[-2000:]
        time.sleep(1.5)
        # no echo: nobody took the host's clipboard back from the app that copied
        assert on_a.owns_clipboard
        assert seen_a == []
        big2 = big.replace("line", "zeile")
        assert on_b.set_remote_text(big2)  # copied on the client's desktop
        assert _wait(seen_a, big2), cl.text()[-2000:] + hl.text()[-2000:]
        time.sleep(1.5)
        assert on_b.owns_clipboard
        assert seen_b == [big]
        # contents are never logged
        assert "line 000001" not in hl.text() + cl.text()
        assert "zeile" not in hl.text() + cl.text()
    finally:
        on_a.close()
        on_b.close()


@needs_x
def test_oversize_refused_with_clear_lines(session: Any) -> None:
    a, b, hl, cl = session
    seen_a: list[str] = []
    on_a, on_b = _sync(a, seen_a), _sync(b, [])
    try:
        # over the host's --clipboard-max 400000: the client sends it, the host refuses
        assert on_b.set_remote_text("q" * 500_000)
        pattern = r"clipboard text of 500000 bytes is larger than the limit of 400000 bytes"
        assert hl.wait(r"clipboard from the client not applied: refused: " + pattern, 20), hl.text()
        assert cl.wait(r"clipboard \(500000 bytes\) not synced: refused: " + pattern, 10), cl.text()
        # over the client's own limit (1 MiB): never sent
        assert on_b.set_remote_text("r" * 1_100_000)
        assert cl.wait(
            r"clipboard: local copy of 1100000 bytes not synced: larger than the limit of "
            r"1048576 bytes",
            15,
        ), cl.text()
        time.sleep(1.0)
        assert seen_a == []
    finally:
        on_a.close()
        on_b.close()


# ---- the X11 polling fallback (an X server without XFIXES) ------------------------------------


@needs_x
def test_x11_polling_fallback_sees_changes_and_reports_oversize_once() -> None:
    from wavry.platform.clipboard import ClipboardSync
    from wavry.platform.xvfb import XvfbServer

    a = XvfbServer(320, 240).start()
    seen: list[str] = []
    sizes: list[int] = []
    try:
        poller = ClipboardSync(
            seen.append, a.display, str(a.auth_file), poll=True, max_bytes=100_000,
            on_too_large=sizes.append,
        ).start()  # fmt: skip
        owner = _sync(a, [])
        try:
            assert poller.mode == "poll"
            assert owner.set_remote_text("polled on X11")
            assert _wait(seen, "polled on X11", 5)
            assert owner.set_remote_text("p" * 150_000)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not sizes:
                time.sleep(0.02)
            time.sleep(1.0)  # several more polls of the same oversized copy
            assert sizes == [150_000] and seen == ["polled on X11"]
            assert poller.set_remote_text("from the peer")  # and the other direction
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not poller.owns_clipboard:
                time.sleep(0.02)
            assert poller.owns_clipboard
            time.sleep(0.6)
            assert seen == ["polled on X11"]  # our own ownership is never polled back
        finally:
            owner.close()
            poller.close()
    finally:
        a.stop()
