"""Shared by the browser client's tests: the files the page's node tests compare against (bytes
made by the Python implementation, rift.proto's descriptor), and the Playwright fixtures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
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
