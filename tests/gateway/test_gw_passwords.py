"""Argon2id off the event loop: niced worker processes (default) and the thread pool, bounded
concurrency with a bounded wait queue (503 ``busy`` beyond it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from wavry.gateway.errors import install_error_handlers
from wavry.gateway.security import Passwords, PasswordsBusy
from wavry.gateway.settings import ConfigError, GatewaySettings

DEFAULT_PARAMS = "$argon2id$v=19$m=65536,t=3,p=4$"  # RFC 9106 low-memory profile, unchanged


def test_process_pool_hashes_verifies_and_runs_niced() -> None:
    async def main() -> None:
        pw = Passwords(1, executor="process", nice=10)
        try:
            encoded = await pw.hash("correct horse")
            assert encoded.startswith(DEFAULT_PARAMS)
            assert await pw.verify(encoded, "correct horse") is True
            assert await pw.verify(encoded, "wrong horse") is False
            assert await pw.verify(None, "correct horse") is False  # unknown login
            assert await pw.verify("not a hash", "x") is False
            loop = asyncio.get_running_loop()
            worker = await loop.run_in_executor(pw._pool, os.getpid)
            assert worker != os.getpid()
            assert await loop.run_in_executor(pw._pool, os.nice, 0) == min(19, os.nice(0) + 10)
        finally:
            pw.close()

    asyncio.run(main())


def test_thread_pool_is_interchangeable() -> None:
    async def main() -> None:
        procs, threads = Passwords(1), Passwords(1, executor="thread")
        try:
            a = await procs.hash("pw one")
            b = await threads.hash("pw two")
            assert b.startswith(DEFAULT_PARAMS)
            assert await threads.verify(a, "pw one") and await procs.verify(b, "pw two")
            assert not await threads.verify(a, "pw two")
        finally:
            procs.close()
            threads.close()

    asyncio.run(main())


@pytest.mark.parametrize("executor", ["process", "thread"])
def test_saturated_hashing_answers_busy_without_queueing(executor: str) -> None:
    async def main() -> None:
        pw = Passwords(1, executor=executor, queue=1)
        try:
            running = asyncio.ensure_future(pw.hash("a"))  # takes the only slot
            waiting = asyncio.ensure_future(pw.verify(None, "b"))  # the one queue place
            await asyncio.sleep(0)  # both start and suspend inside Passwords
            assert pw.in_flight == 2
            with pytest.raises(PasswordsBusy) as err:
                await pw.hash("c")
            assert (err.value.status, err.value.code, err.value.retry_after) == (503, "busy", 1)
            assert pw.in_flight == 2  # the refused call left no trace
            assert (await running).startswith(DEFAULT_PARAMS)
            assert await waiting is False
            assert pw.in_flight == 0
            assert await pw.verify(await pw.hash("d"), "d")  # usable again
        finally:
            pw.close()

    asyncio.run(main())


def test_busy_is_a_503_with_retry_after() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/login")
    async def login() -> None:
        raise PasswordsBusy()

    resp = TestClient(app).post("/login")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.json()["error"] == "busy"


def test_settings_refuse_an_unknown_executor() -> None:
    with pytest.raises(ConfigError, match="ARGON2_EXECUTOR"):
        GatewaySettings(argon2_executor="fork", data_dir="/tmp").validate_all()
    with pytest.raises(ValueError):
        Passwords(1, executor="fork")


def test_workers_leave_when_the_gateway_is_killed() -> None:
    code = (
        "import asyncio, os\n"
        "from wavry.gateway.security import Passwords\n"
        "async def main():\n"
        "    pw = Passwords(2)\n"
        "    loop = asyncio.get_running_loop()\n"
        "    pids = await asyncio.gather(*(loop.run_in_executor(pw._pool, _slow_pid)\n"
        "                                  for _ in range(2)))\n"
        "    print(' '.join(map(str, set(pids))), flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "def _slow_pid():\n"
        "    import time; time.sleep(0.5); return os.getpid()\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "gw.py"
        script.write_text(code)
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            workers = [int(x) for x in proc.stdout.readline().split()]
            assert workers and all(_alive(w) for w in workers)
        finally:
            proc.kill()  # no shutdown, no pool cleanup
            proc.wait()
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return False
    return status != "Z"
