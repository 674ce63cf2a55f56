"""The compiled protocol core (src/wavry/native.py): which build is used, and that a stale one
never is."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wavry import native


def _complete(root: Path, name: str) -> Path:
    d = root / name
    (d / "wavry" / "rift").mkdir(parents=True)
    (d / native._COMPLETE).write_text("x\n")
    return d


def test_only_a_build_of_exactly_these_sources_is_chosen(tmp_path: Path) -> None:
    env = {"WAVRY_NATIVE_DIR": str(tmp_path)}
    assert native.choose(env)[0] is None  # nothing built
    _complete(tmp_path, f"{sys.implementation.cache_tag}-{'0' * 20}")  # other sources
    target, why = native.choose(env)
    assert target is None and "no build for these sources" in why
    incomplete = tmp_path / f"{sys.implementation.cache_tag}-{native.digest()}"
    (incomplete / "wavry" / "rift").mkdir(parents=True)  # a build that did not finish
    assert native.choose(env)[0] is None
    shutil.rmtree(incomplete)
    built = _complete(tmp_path, f"{sys.implementation.cache_tag}-{native.digest()}")
    assert native.choose(env) == (built, f"compiled with mypyc ({built})")
    assert native.choose({**env, "WAVRY_PURE": "1"}) == (None, "WAVRY_PURE=1")


def test_an_edited_module_changes_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "rift"
    shutil.copytree(native.package_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(native, "package_dir", lambda: copy)
    before = native.digest()
    assert [p.name for p in native.sources()] == [
        p.name for p in sorted(copy.glob("*.py")) if p.name not in ("__init__.py", "rift_pb2.py")
    ]
    (copy / "rift_pb2.py").write_text("# not compiled: not in the digest\n")
    assert native.digest() == before
    pacer = copy / "pacer.py"
    pacer.write_text(pacer.read_text() + "\n# edited\n")
    assert native.digest() != before


def _module_file(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import wavry.rift.sender as s; print(s.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_the_set_up_runs_the_compiled_core_and_wavry_pure_the_plain_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "WAVRY_PURE"}
    if native.choose(env)[0] is None:
        pytest.skip("the compiled core is not installed (scripts/setup.sh installs it)")
    assert _module_file(env).endswith(".so")
    assert _module_file({**env, "WAVRY_PURE": "1"}).endswith("sender.py")


def _scratch_package(tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rift = tmp_path / "src" / "wavry" / "rift"
    rift.mkdir(parents=True)
    (rift / "__init__.py").write_text("")
    (rift / "scratch.py").write_text(source)
    monkeypatch.setattr(native, "package_dir", lambda: rift)
    monkeypatch.setenv("WAVRY_NATIVE_DIR", str(tmp_path / "builds"))


@pytest.mark.timeout(300)
def test_a_build_that_fails_is_one_line_and_leaves_nothing_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _scratch_package(tmp_path, 'def f() -> int:\n    return "not an int"\n', monkeypatch)
    assert native.main([]) == 1  # mypyc refuses the type error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wavry.native: mypyc stopped"), err
    assert native.choose()[0] is None and native.main(["--check"]) == 1

    (native.package_dir() / "scratch.py").write_text("def f() -> int:\n    return 1\n")
    monkeypatch.setenv("CC", "false")  # a C compiler that always fails
    # a process whose logging writes to a closed stream (as a test before this one may leave
    # it): setuptools' log lines must not reach it
    closed = io.StringIO()
    closed.close()
    broken = logging.StreamHandler(closed)
    logging.getLogger().addHandler(broken)
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    assert native.main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CompileError" in err[0], err
    assert native.choose()[0] is None
    assert not list((tmp_path / "builds").glob("*/BUILD_COMPLETE"))
    logging.getLogger().removeHandler(broken)
