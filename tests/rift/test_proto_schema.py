"""The generated protobuf module is fresh, and its schema matches docs/spec/RIFT.md §5 field for
field."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from google.protobuf.descriptor import Descriptor, EnumDescriptor

from wavry.rift import rift_pb2

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec" / "RIFT.md"


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path), "--quiet"],
        check=True,
        capture_output=True,
    )
    for name in ("rift_pb2.py", "rift_pb2.pyi"):
        fresh = (tmp_path / name).read_text()
        committed = (ROOT / "src" / "wavry" / "rift" / name).read_text()
        assert fresh == committed, f"{name} is stale: run scripts/gen_proto.py"


def _spec_block() -> str:
    text = SPEC.read_text()
    start = text.index("## 5. Logical messages")
    block = text[start:]
    return block[block.index("```") + 3 : block.index("```", block.index("```") + 3)]


def _spec_definitions() -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Parse `message X { ... }` / `enum X { ... }` (nested braces allowed) from the spec."""
    block = _spec_block().replace("(+)", "")
    messages: dict[str, dict[str, int]] = {}
    enums: dict[str, dict[str, int]] = {}
    for m in re.finditer(r"\b(message|enum)\s+(\w+)\s*\{", block):
        kind, name = m.group(1), m.group(2)
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(block[i], 0)
            i += 1
        body = block[m.end() : i - 1]
        # drop nested enums / oneof wrappers' own names; keep "name = N"
        body = re.sub(r"\benum\s+\w+\s*\{[^}]*\}", "", body) if kind == "message" else body
        pairs = re.findall(r"(\w+)\s*=\s*(\d+)\s*;", body)
        target = enums if kind == "enum" else messages
        target[name] = {field: int(num) for field, num in pairs}
        if kind == "message":
            for en in re.finditer(r"\benum\s+(\w+)\s*\{([^}]*)\}", block[m.end() : i - 1]):
                enums[f"{name}.{en.group(1)}"] = {
                    f: int(n) for f, n in re.findall(r"(\w+)\s*=\s*(\d+)", en.group(2))
                }
    for nested in [k for k in enums if "." in k]:
        enums.pop(nested.split(".")[1], None)  # also matched at the top level by the regex
    return messages, enums


def _descriptor(name: str) -> Descriptor:
    return rift_pb2.DESCRIPTOR.message_types_by_name[name]


def test_every_spec_message_and_field_number() -> None:
    messages, _ = _spec_definitions()
    assert len(messages) >= 40
    for name, fields in messages.items():
        desc = _descriptor(name)
        ours = {f.name: f.number for f in desc.fields}
        assert ours == fields, f"message {name} differs from docs/spec/RIFT.md"


def test_every_spec_enum_value() -> None:
    _, enums = _spec_definitions()
    for name, values in enums.items():
        if "." in name:
            outer, inner = name.split(".")
            desc: EnumDescriptor = _descriptor(outer).enum_types_by_name[inner]
        else:
            desc = rift_pb2.DESCRIPTOR.enum_types_by_name[name]
        assert {v.name: v.number for v in desc.values} == values, name
