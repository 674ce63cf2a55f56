"""Real services for the gateway tests: PostgreSQL and Redis clusters, gateway processes."""

from __future__ import annotations

import asyncio
import base64
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from wavry.rift.identity import Identity

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
ADMIN_TOKEN = "admin-" + "x" * 40
RELAY_TOKEN = "relay-enrolment-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_async(coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@dataclass
class Gateway:
    proc: subprocess.Popen[str]
    url: str
    ws_url: str
    stun: tuple[str, int]
    data_dir: Path
    output: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _reader(proc: subprocess.Popen[str], lines: list[str], q: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        q.put(line)


def launch_gateway(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> Gateway:
    port = free_port()
    cmd = [
        sys.executable, "-m", "wavry.gateway",
        "--listen", f"127.0.0.1:{port}",
        "--stun-listen", "127.0.0.1:0",
        "--data-dir", str(data_dir),
        "--admin-token", ADMIN_TOKEN,
        "--relay-token", RELAY_TOKEN,
        "--log-level", "warning",
        *args,
    ]  # fmt: skip
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, cwd=ROOT
    )
    lines: list[str] = []
    q: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc, lines, q), daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = q.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            raise RuntimeError("gateway did not start:\n" + "".join(lines)) from None
        m = re.search(r"listening on http://(\S+) .*STUN on udp (\S+):(\d+);", line)
        if m:
            break
        if proc.poll() is not None and q.empty():
            raise RuntimeError("gateway exited:\n" + "".join(lines))
    gw = Gateway(
        proc,
        f"http://{m.group(1)}",
        f"ws://{m.group(1)}/v1/signal",
        (m.group(2), int(m.group(3))),
        data_dir,
        lines,
    )
    for _ in range(100):  # uvicorn is serving once /ready answers
        try:
            if httpx.get(gw.url + "/ready", timeout=1).status_code == 200:
                return gw
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    gw.stop()
    raise RuntimeError("gateway never became ready:\n" + "".join(lines))


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start(*args: str, env: dict[str, str] | None = None, data: Path | None = None) -> Gateway:
        d = data or tmp_path / f"gw{len(started)}"
        d.mkdir(exist_ok=True)
        gw = launch_gateway(d, *args, env=env)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


# --- PostgreSQL --------------------------------------------------------------------------


@dataclass
class Postgres:
    host: str
    port: int

    def create_db(self) -> str:
        name = "gw_" + uuid.uuid4().hex[:10]
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "createdb"),
             "-h", self.host, "-p", str(self.port), "-U", "postgres", name],
            check=True, capture_output=True,
        )  # fmt: skip
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="wavry-pg-"))
    os.chmod(base, 0o755)
    data = base / "data"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    shutil.chown(base, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--locale=C"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", opts,
         "-w", "-t", "60", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield Postgres("127.0.0.1", port)
    finally:
        subprocess.run(
            [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if not Path(REDIS).exists():
        pytest.skip("redis-server not found")
    port = free_port()
    d = tempfile.mkdtemp(prefix="wavry-redis-")
    proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", d],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


# --- account helpers ---------------------------------------------------------------------


@dataclass
class Account:
    user: dict[str, Any]
    token: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register(
    client: httpx.Client, name: str | None = None, password: str = "correct horse 1"
) -> Account:
    name = name or "u" + uuid.uuid4().hex[:12]
    r = client.post(
        "/v1/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": password,
              "display_name": name.title()},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    body = r.json()
    return Account(body["user"], body["token"], password)


def device_proof(identity: Identity, user_id: str) -> str:
    sig = identity.sign(b"wavry-device:" + user_id.encode())
    return base64.urlsafe_b64encode(sig).decode().rstrip("=")


def add_device(client: httpx.Client, acct: Account, kind: str, name: str = "dev") -> Identity:
    ident = Identity.generate()
    r = client.post(
        "/v1/devices",
        headers=acct.headers,
        json={"wavry_id": ident.wavry_id, "name": name, "kind": kind,
              "proof": device_proof(ident, acct.user["id"])},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return ident


@pytest.fixture
def helpers() -> Any:
    class H:
        Account = Account
        register = staticmethod(register)
        add_device = staticmethod(add_device)
        device_proof = staticmethod(device_proof)
        run = staticmethod(run_async)
        free_port = staticmethod(free_port)
        admin_token = ADMIN_TOKEN
        relay_token = RELAY_TOKEN

    return H
