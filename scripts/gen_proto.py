#!/usr/bin/env python3
"""Generate the RIFT protobuf module (rift_pb2.py + typed stub rift_pb2.pyi) from rift.proto.

Usage: gen_proto.py [--out DIR] [--quiet]

The generated files are committed; `tests/rift/test_proto_generated.py` regenerates them into a
temporary directory and fails when the committed copies are stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "src" / "wavry" / "rift"
PROTO = PROTO_DIR / "rift.proto"
OUTPUTS = ("rift_pb2.py", "rift_pb2.pyi")


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # dev dependency: bundles a pinned protoc

    plugin = shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent))
    if plugin is None:
        raise SystemExit("protoc-gen-mypy not found beside the interpreter (install mypy-protobuf)")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--plugin=protoc-gen-mypy={plugin}",
        f"--mypy_out={out_dir}",
        str(PROTO),
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_DIR)
    parser.add_argument("--quiet", action="store_true")
    ns = parser.parse_args()
    generate(ns.out)
    if not ns.quiet:
        for name in OUTPUTS:
            print(ns.out / name)


if __name__ == "__main__":
    main()
