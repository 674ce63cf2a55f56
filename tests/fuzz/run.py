"""Run one fuzz target under atheris (libFuzzer), or replay inputs through it.

    python -m tests.fuzz.run TARGET [--seconds N | --runs N] [--merge] [--jobs-dir DIR]
    python -m tests.fuzz.run TARGET --replay FILE_OR_DIR...

A target is a module in tests/fuzz/targets/ with ``seeds() -> list[bytes]`` (valid inputs built
with the product's own encoders) and ``test_one_input(data: bytes) -> None``, which raises
nothing for any input: an exception or a crash is a finding. Its committed corpus is
tests/fuzz/corpus/TARGET/ (read-only during a run: new inputs go to a scratch directory, and
``--merge`` folds the interesting ones back, minimised); a crash leaves its input in
tests/fuzz/crashes/TARGET/, where the test suite replays it for ever after.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"


def load(name: str) -> object:
    return importlib.import_module(f"tests.fuzz.targets.{name}")


def write_seeds(name: str, module: object) -> Path:
    """The committed corpus, created from the target's seeds when missing."""
    corpus = CORPUS / name
    if not corpus.is_dir() or not any(corpus.iterdir()):
        corpus.mkdir(parents=True, exist_ok=True)
        import hashlib

        for data in module.seeds():  # type: ignore[attr-defined]
            (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return corpus


def replay(name: str, paths: list[Path]) -> int:
    module = load(name)
    n = 0
    for p in paths:
        for f in sorted(p.iterdir()) if p.is_dir() else [p]:
            if f.is_file() and not f.name.startswith("."):
                module.test_one_input(f.read_bytes())  # type: ignore[attr-defined]
                n += 1
    return n


def fuzz(name: str, seconds: int | None, runs: int | None, merge: bool) -> None:
    import atheris

    with atheris.instrument_imports(include=["wavry", "tests.fuzz.targets"]):
        module = load(name)
    corpus = write_seeds(name, module)
    crashes = CRASHES / name
    crashes.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"wavry-fuzz-{name}-"))
    argv = [
        sys.argv[0],
        str(scratch),
        str(corpus),
        f"-artifact_prefix={crashes}/",
        "-print_final_stats=1",
        "-rss_limit_mb=3072",
        "-timeout=20",
        "-max_len=4096",
    ]
    if seconds is not None:
        argv.append(f"-max_total_time={seconds}")
    if runs is not None:
        argv.append(f"-runs={runs}")
    if merge:
        # after the run (atexit): the new inputs that add coverage join the committed corpus
        import atexit

        def fold() -> None:
            os.system(
                f"{sys.executable} -m tests.fuzz.run {name} --merge-only {scratch} >/dev/null 2>&1"
            )
            shutil.rmtree(scratch, ignore_errors=True)

        atexit.register(fold)
    else:
        import atexit

        atexit.register(shutil.rmtree, scratch, True)
    atheris.Setup(argv, module.test_one_input)  # type: ignore[attr-defined]
    atheris.Fuzz()


def merge_only(name: str, scratch: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["wavry", "tests.fuzz.targets"]):
        module = load(name)
    corpus = write_seeds(name, module)
    argv = [sys.argv[0], "-merge=1", str(corpus), str(scratch), "-max_len=4096"]
    atheris.Setup(argv, module.test_one_input)  # type: ignore[attr-defined]
    atheris.Fuzz()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target")
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--merge", action="store_true", help="fold new inputs into the corpus")
    ap.add_argument("--merge-only", type=Path, metavar="SCRATCH", help=argparse.SUPPRESS)
    ap.add_argument("--replay", type=Path, nargs="+", metavar="PATH")
    a = ap.parse_args()
    if a.replay:
        print(f"{a.target}: {replay(a.target, a.replay)} inputs replayed, no finding")
    elif a.merge_only:
        merge_only(a.target, a.merge_only)
    else:
        fuzz(a.target, a.seconds, a.runs, a.merge)


if __name__ == "__main__":
    main()
