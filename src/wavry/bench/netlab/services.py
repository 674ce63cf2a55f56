"""Real control-plane processes for the NAT bed (`wavry bench connect` and the connectivity
tests): a gateway (SQLite) and a relay registered with it, started in a network namespace or on
loopback, with their output collected."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

RELAY_TOKEN = "relay-enrolment-token-0123456789"
ADMIN_TOKEN = "admin-" + "x" * 40


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """A process whose output lines are collected; ``wait_for`` finds a line, ``mark`` says
    where the lines stand now (to wait only for what comes after)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _more: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._more:
                self.lines.append(line)
                self._more.notify_all()
        with self._more:
            self._more.notify_all()

    def mark(self) -> int:
        return len(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0, since: int = 0) -> re.Match[str]:
        """The first line from ``since`` on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        checked = since
        with self._more:
            while True:
                for line in self.lines[checked:]:
                    if m := re.search(pattern, line):
                        return m
                checked = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no {pattern!r} within {timeout} s:\n" + "".join(self.lines)
                    )
                if self.proc.poll() is not None and not self._more.wait(0.05):
                    raise RuntimeError(f"exited ({self.proc.returncode}):\n" + "".join(self.lines))
                self._more.wait(min(left, 0.2))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def spawn(argv: Sequence[str], env: dict[str, str] | None = None) -> Service:
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full
    )
    return Service(proc)


def wavry_argv(*args: str, netns: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "wavry", *args]
    return ["ip", "netns", "exec", netns, *cmd] if netns else cmd


@dataclass
class ControlPlane:
    gateway: Service
    relay: Service
    url: str

    def stop(self) -> None:
        self.relay.stop()
        self.gateway.stop()


def start_gateway(
    data_dir: Path,
    host: str,
    port: int,
    netns: str | None = None,
    stun_port: int = 3478,
    env: dict[str, str] | None = None,
) -> Service:
    gw = spawn(
        wavry_argv(
            "gateway", "--listen", f"{host}:{port}", "--stun-listen", f"{host}:{stun_port}",
            "--data-dir", str(data_dir), "--admin-token", ADMIN_TOKEN,
            "--relay-token", RELAY_TOKEN, "--log-level", "warning",
            netns=netns,
        ),
        env=env,
    )  # fmt: skip
    _started(gw, r"listening on http://", timeout=90)
    return gw


def _started(service: Service, pattern: str, timeout: float) -> None:
    """Wait for ``pattern``; a service that does not get there is stopped, not left behind."""
    try:
        service.wait_for(pattern, timeout=timeout)
    except BaseException:
        service.stop()
        raise


def wait_ready(url: str, netns: str | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns is None:
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        else:
            code = f"import httpx; assert httpx.get('{url}/ready', timeout=1).status_code == 200"
            r = subprocess.run(
                ["ip", "netns", "exec", netns, sys.executable, "-c", code], capture_output=True
            )
            if r.returncode == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} never became ready")


def start_relay(
    url: str, host: str, port: int, netns: str | None = None, relay_id: str = "relay-1"
) -> Service:
    relay = spawn(
        wavry_argv(
            "relay", "--listen", f"{host}:{port}", "--public-addr", f"{host}:{port}",
            "--gateway", url, "--relay-id", relay_id, "--http-listen", "127.0.0.1:0",
            "--log-level", "info",
            netns=netns,
        ),
        env={"WAVRY_RELAY_TOKEN": RELAY_TOKEN},
    )  # fmt: skip
    _started(relay, r"registered with gateway", timeout=30)
    return relay
