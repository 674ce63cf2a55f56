"""Shared by the browser client's tests: the files the page's node tests compare against (bytes
made by the Python implementation, rift.proto's descriptor), and the Playwright fixtures."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict

from wavry.media.marker import draw_marker
from wavry.rift import rift_pb2
from wavry.rift.pairing import pairing_proof

_KINDS = {
    FieldDescriptor.TYPE_UINT32: "uint",
    FieldDescriptor.TYPE_UINT64: "uint",
    FieldDescriptor.TYPE_INT32: "uint",
    FieldDescriptor.TYPE_INT64: "uint",
    FieldDescriptor.TYPE_ENUM: "uint",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_SINT32: "sint",
    FieldDescriptor.TYPE_SINT64: "sint",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_MESSAGE: "message",
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def schema() -> dict[str, list[dict[str, Any]]]:
    """Every message of rift.proto: field number, name, kind, repeated, nested type."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, desc in rift_pb2.DESCRIPTOR.message_types_by_name.items():
        out[name] = [
            {
                "n": f.number,
                "name": f.name,
                "kind": _KINDS[f.type],
                "repeated": f.is_repeated,
                "msg": f.message_type.name if f.message_type is not None else None,
            }
            for f in desc.fields
        ]
    return out


def messages() -> list[dict[str, Any]]:
    """Messages serialized by Python protobuf, with the values the page must decode them to."""
    m = rift_pb2
    cases: list[Any] = [
        m.Message(
            control=m.ControlMessage(
                hello=m.Hello(
                    client_name="ü browser",
                    platform=m.WEB,
                    supported_codecs=[m.H264, m.AV1],
                    max_resolution=m.Resolution(width=1920, height=1080),
                    max_fps=60,
                    protocol_version=1,
                    fec_schemes=[m.FEC_REED_SOLOMON, m.FEC_XOR_INTERLEAVED],
                )
            )
        ),
        m.Message(
            control=m.ControlMessage(
                transport_feedback=m.TransportFeedback(
                    base_packet_id=2**40 + 5,
                    packet_count=9,
                    received_bitmap=b"\xfd\x01",
                    reference_time_us=1_733_000_000_123_456,
                    arrival_delta_us=[0, 15, -20, 2**31 - 1, -(2**31)],
                )
            )
        ),
        m.Message(
            media=m.MediaMessage(
                video=m.VideoChunk(
                    frame_id=77,
                    chunk_index=2,
                    chunk_count=3,
                    timestamp_us=1_733_000_000_000_001,
                    keyframe=True,
                    payload=bytes(range(256)) * 3,
                    capture_us=900,
                    encode_us=4100,
                )
            )
        ),
        m.Message(
            media=m.MediaMessage(
                fec=m.FecPacket(
                    group_id=9,
                    first_packet_id=100,
                    shard_count=4,
                    parity_index=1,
                    payload=b"\x00\x01\x02",
                    shard_lengths=[3, 2, 3, 1],
                    parity_count=2,
                    scheme=m.FEC_REED_SOLOMON,
                )
            )
        ),
        m.Message(input=m.InputMessage(timestamp_us=5, mouse_move=m.MouseMove(x=0.25, y=0.75))),
        m.Message(input=m.InputMessage(timestamp_us=6, mouse_motion=m.MouseMotion(dx=-7, dy=3))),
        m.Message(
            input=m.InputMessage(
                gamepad=m.GamepadMessage(
                    gamepad_id=1,
                    axes=[m.GamepadAxis(axis=4, value=0.5)],
                    buttons=[m.GamepadButton(button=11, pressed=True)],
                )
            )
        ),
        m.Message(
            control=m.ControlMessage(
                hello_ack=m.HelloAck(
                    accepted=True,
                    selected_codec=m.H264,
                    stream_resolution=m.Resolution(width=1280, height=720),
                    fps=60,
                    session_id=b"\x01" * 16,
                    session_alias=0xDEADBEEF,
                    fec_scheme=m.FEC_REED_SOLOMON,
                )
            )
        ),
        m.Message(control=m.ControlMessage(ping=m.Ping())),
        m.Message(control=m.ControlMessage(nack=m.Nack(packet_ids=[1, 2**33, 300]))),
        m.Message(
            control=m.ControlMessage(
                file_status=m.FileStatus(file_id=2**32 - 1, status=1, message="next=3")
            )
        ),
    ]
    out = []
    for msg in cases:
        d = MessageToDict(msg, preserving_proto_field_name=True, use_integers_for_enums=True)
        out.append({"bytes": _b64(msg.SerializeToString()), "json": d})
    return out


def marker_frames() -> list[dict[str, Any]]:
    """Luma planes with the synthetic source's marker (top band only, to keep files small)."""
    out = []
    for width, frame_id, ts in ((1280, 12345, 1_733_000_123_456_789), (640, 7, 42)):
        luma = np.full((48, width), 128, dtype=np.uint8)
        draw_marker(luma, frame_id, ts)
        out.append(
            {
                "width": width,
                "height": 48,
                "luma": _b64(luma.tobytes()),
                "frame_id": frame_id,
                "timestamp_us": ts,
            }
        )
    return out


def pairing() -> dict[str, str]:
    h = bytes(range(32))
    return {"code": "042917", "hash": h.hex(), "proof": pairing_proof("042917", h).hex()}


def write_fixtures(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "schema.json").write_text(json.dumps(schema()))
    (directory / "messages.json").write_text(json.dumps(messages()))
    (directory / "marker.json").write_text(json.dumps(marker_frames()))
    (directory / "pairing.json").write_text(json.dumps(pairing()))


@pytest.fixture
def page_fixtures(tmp_path: Path) -> Path:
    directory = tmp_path / "page-fixtures"
    write_fixtures(directory)
    return directory


# ---- Playwright and `wavry host --web` --------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test past its timeout is stopped by pytest-timeout's thread method (stacks
    dumped, the run ended) rather than its signal method: one fresh-clone CI run hung for 17
    minutes in a Playwright call that SIGALRM never interrupted (the call waits inside the
    driver's event loop)."""
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(method="thread"))


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (a fresh profile per context)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not installed (scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    p = sync_playwright().start()
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        p.stop()


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (the web endpoint binds both)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


@dataclass
class WebHost:
    proc: subprocess.Popen[str]
    url: str
    wavry_id: str
    lines: list[str] = field(default_factory=list)

    def link(self, query: str = "", fragment: str | None = None) -> str:
        base, frag = self.url.split("#", 1)
        return f"{base}{query}#{fragment if fragment is not None else frag}"

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            time.sleep(0.05)
        raise AssertionError(f"host never printed {pattern!r}:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def web_host(home: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[WebHost]:
    """`wavry host --web 127.0.0.1:PORT ...` in its own config directory."""
    port = free_port()
    cmd = [sys.executable, "-m", "wavry", "host", "--listen", "127.0.0.1:0"]
    cmd += ["--web", f"127.0.0.1:{port}", *args]
    full_env = dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1")
    full_env.update(env or {})
    proc = subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    url = None
    assert proc.stdout is not None
    deadline = time.monotonic() + 60  # a busy machine: the host's imports alone can take 20 s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := re.match(r"browser: (https://\S+)", line):
            url = m.group(1)
            break
    if url is None:
        proc.kill()
        raise AssertionError("host printed no browser: link:\n" + "".join(lines))
    wavry_id = re.search(r"[#&]id=([A-Za-z0-9_-]{43})", url)
    assert wavry_id is not None, url
    host = WebHost(proc, url, wavry_id.group(1), lines)

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        yield host
    finally:
        host.stop()


def open_page(browser: Any, url: str) -> Any:
    """A fresh context (its own IndexedDB: a new browser identity) on the host's page. The page
    is served with the host's self-signed certificate: the test accepts it as a user would."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 960, "height": 600})
    page = context.new_page()
    page.on("pageerror", lambda e: print("page error:", e))
    page.goto(url)
    return page


def wait_stats(page: Any, ok: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Poll window.wavryStats() until ``ok(stats)``; the last stats in the failure message."""
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = page.evaluate("window.wavryStats ? window.wavryStats() : {}")
        if stats and ok(stats):
            return stats
        time.sleep(0.25)
    raise AssertionError(f"page never got there; last stats: {stats}")


SYNTHETIC = ("--source", "synthetic", "--size", "640x360", "--fps", "30", "--trust", "any")


@pytest.fixture(scope="module")
def synthetic_host(tmp_path_factory: Any) -> Iterator[WebHost]:
    """One `wavry host --web --source synthetic --size 640x360 --fps 30 --trust any` shared by a
    module's tests (each test opens its own page: a new browser identity, a new session)."""
    with web_host(tmp_path_factory.mktemp("web-host"), *SYNTHETIC) as host:
        yield host


def wait_js(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Poll a JS expression until it is truthy (evaluate(), which the page's CSP allows; the
    eval() of Playwright's wait_for_function it forbids)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.1)
    raise AssertionError(f"never true: {expression}")


@pytest.fixture
def web() -> SimpleNamespace:
    """The helpers above, for test modules (pytest's importlib mode cannot import conftest)."""
    return SimpleNamespace(
        host=web_host, open_page=open_page, wait_stats=wait_stats, wait_js=wait_js
    )
