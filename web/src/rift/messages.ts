/**
 * The RIFT/1 message schema (RIFT.md §5) as codec tables, plus the enum values the page uses.
 * tests/web/ checks every table against rift.proto's compiled descriptor.
 */

import { type Field, type Kind, type Pb, type Schema, decode, encode } from "./proto.js";

export const Codec = { HEVC: 0, H264: 1, AV1: 2 } as const;
export const Platform = { LINUX: 0, WINDOWS: 1, MACOS: 2, ANDROID: 3, QUEST: 4, WEB: 5 } as const;
export const FecScheme = { FEC_XOR_INTERLEAVED: 0, FEC_REED_SOLOMON: 1 } as const;
export const RejectReason = {
  REJECT_NONE: 0,
  BUSY: 1,
  PAIRING_REQUIRED: 2,
  NOT_TRUSTED: 3,
  UNSUPPORTED_VERSION: 4,
  NO_COMMON_CODEC: 5,
} as const;
export const FileStatusCode = { PENDING: 0, IN_PROGRESS: 1, COMPLETE: 2, ERROR: 3 } as const;

type Spec = [number, string, Kind, (() => Schema)?, boolean?];

function schema(name: string, specs: Spec[]): Schema {
  const fields: Field[] = specs.map(([n, fname, kind, msg, repeated]) => ({
    n,
    name: fname,
    kind,
    msg,
    repeated,
  }));
  return { name, fields };
}

const R = true; // repeated

export const S: Record<string, Schema> = {};
const m = (name: string) => () => S[name];

S.Resolution = schema("Resolution", [
  [1, "width", "uint"],
  [2, "height", "uint"],
]);
S.Message = schema("Message", [
  [1, "control", "message", m("ControlMessage")],
  [2, "input", "message", m("InputMessage")],
  [3, "media", "message", m("MediaMessage")],
]);
S.ControlMessage = schema("ControlMessage", [
  [1, "hello", "message", m("Hello")],
  [2, "hello_ack", "message", m("HelloAck")],
  [3, "ping", "message", m("Ping")],
  [4, "pong", "message", m("Pong")],
  [5, "stats", "message", m("StatsReport")],
  [6, "congestion", "message", m("CongestionControl")],
  [7, "rfi", "message", m("ReferenceInvalidation")],
  [8, "monitor_list", "message", m("MonitorList")],
  [9, "select_monitor", "message", m("SelectMonitor")],
  [10, "nack", "message", m("Nack")],
  [11, "encoder_control", "message", m("EncoderControl")],
  [12, "pose_update", "message", m("PoseUpdate")],
  [13, "vr_timing", "message", m("VrTiming")],
  [14, "hand_pose_update", "message", m("HandPoseUpdate")],
  [15, "clipboard", "message", m("ClipboardMessage")],
  [16, "file_header", "message", m("FileHeader")],
  [17, "file_status", "message", m("FileStatus")],
  [18, "latency", "message", m("LatencyStats")],
  [19, "pair_request", "message", m("PairRequest")],
  [20, "pair_result", "message", m("PairResult")],
  [21, "disconnect", "message", m("Disconnect")],
  [22, "transport_feedback", "message", m("TransportFeedback")],
]);
S.Hello = schema("Hello", [
  [1, "client_name", "string"],
  [2, "platform", "uint"],
  [3, "supported_codecs", "uint", undefined, R],
  [4, "max_resolution", "message", m("Resolution")],
  [5, "max_fps", "uint"],
  [6, "input_caps", "uint"],
  [7, "protocol_version", "uint"],
  [8, "public_addr", "string"],
  [9, "fec_schemes", "uint", undefined, R],
]);
S.HelloAck = schema("HelloAck", [
  [1, "accepted", "bool"],
  [2, "selected_codec", "uint"],
  [3, "stream_resolution", "message", m("Resolution")],
  [4, "fps", "uint"],
  [5, "initial_bitrate_kbps", "uint"],
  [6, "keyframe_interval_ms", "uint"],
  [7, "session_id", "bytes"],
  [8, "session_alias", "uint"],
  [9, "public_addr", "string"],
  [10, "reject_reason", "uint"],
  [11, "message", "string"],
  [12, "fec_scheme", "uint"],
]);
S.Ping = schema("Ping", [[1, "timestamp_us", "uint"]]);
S.Pong = schema("Pong", [
  [1, "timestamp_us", "uint"],
  [2, "host_time_us", "uint"],
]);
S.StatsReport = schema("StatsReport", [
  [1, "period_ms", "uint"],
  [2, "received_packets", "uint"],
  [3, "lost_packets", "uint"],
  [4, "rtt_us", "uint"],
  [5, "jitter_us", "uint"],
]);
S.Nack = schema("Nack", [[1, "packet_ids", "uint", undefined, R]]);
S.EncoderControl = schema("EncoderControl", [[1, "skip_frames", "uint"]]);
S.CongestionControl = schema("CongestionControl", [
  [1, "target_bitrate_kbps", "uint"],
  [2, "target_fps", "uint"],
]);
S.ReferenceInvalidation = schema("ReferenceInvalidation", [[1, "last_valid_frame_id", "uint"]]);
S.MonitorInfo = schema("MonitorInfo", [
  [1, "id", "uint"],
  [2, "name", "string"],
  [3, "width", "uint"],
  [4, "height", "uint"],
]);
S.MonitorList = schema("MonitorList", [[1, "monitors", "message", m("MonitorInfo"), R]]);
S.SelectMonitor = schema("SelectMonitor", [[1, "monitor_id", "uint"]]);
S.ClipboardMessage = schema("ClipboardMessage", [[1, "text", "string"]]);
S.FileHeader = schema("FileHeader", [
  [1, "file_id", "uint"],
  [2, "filename", "string"],
  [3, "file_size", "uint"],
  [4, "checksum_sha256", "string"],
  [5, "chunk_size", "uint"],
  [6, "total_chunks", "uint"],
]);
S.FileStatus = schema("FileStatus", [
  [1, "file_id", "uint"],
  [2, "status", "uint"],
  [3, "message", "string"],
  [4, "next_chunk", "uint"],
]);
S.LatencyStats = schema("LatencyStats", [
  [1, "frame_id", "uint"],
  [2, "capture_us", "uint"],
  [3, "encode_us", "uint"],
  [4, "network_us", "uint"],
  [5, "decode_us", "uint"],
  [6, "render_us", "uint"],
  [7, "total_us", "uint"],
]);
S.PoseUpdate = schema("PoseUpdate", [
  [1, "timestamp_us", "uint"],
  [2, "position_x", "float"],
  [3, "position_y", "float"],
  [4, "position_z", "float"],
  [5, "orientation_x", "float"],
  [6, "orientation_y", "float"],
  [7, "orientation_z", "float"],
  [8, "orientation_w", "float"],
]);
S.VrTiming = schema("VrTiming", [
  [1, "refresh_hz", "float"],
  [2, "vsync_offset_us", "uint"], // int64 on the wire; never negative from our hosts
]);
S.HandPoseUpdate = schema("HandPoseUpdate", [
  [1, "timestamp_us", "uint"],
  [2, "hand_id", "uint"],
  [3, "position_x", "float"],
  [4, "position_y", "float"],
  [5, "position_z", "float"],
  [6, "orientation_x", "float"],
  [7, "orientation_y", "float"],
  [8, "orientation_z", "float"],
  [9, "orientation_w", "float"],
  [10, "linear_velocity_x", "float"],
  [11, "linear_velocity_y", "float"],
  [12, "linear_velocity_z", "float"],
  [13, "angular_velocity_x", "float"],
  [14, "angular_velocity_y", "float"],
  [15, "angular_velocity_z", "float"],
]);
S.PairRequest = schema("PairRequest", [[1, "proof", "bytes"]]);
S.PairResult = schema("PairResult", [
  [1, "ok", "bool"],
  [2, "message", "string"],
]);
S.Disconnect = schema("Disconnect", [
  [1, "reason", "uint"],
  [2, "message", "string"],
]);
S.TransportFeedback = schema("TransportFeedback", [
  [1, "base_packet_id", "uint"],
  [2, "packet_count", "uint"],
  [3, "received_bitmap", "bytes"],
  [4, "reference_time_us", "uint"],
  [5, "arrival_delta_us", "sint", undefined, R],
]);
S.InputMessage = schema("InputMessage", [
  [1, "timestamp_us", "uint"],
  [2, "mouse_move", "message", m("MouseMove")],
  [3, "mouse_button", "message", m("MouseButton")],
  [4, "key", "message", m("Key")],
  [5, "scroll", "message", m("Scroll")],
  [6, "gamepad", "message", m("GamepadMessage")],
  [7, "mouse_motion", "message", m("MouseMotion")],
]);
S.MouseMove = schema("MouseMove", [
  [1, "x", "float"],
  [2, "y", "float"],
]);
S.MouseMotion = schema("MouseMotion", [
  [1, "dx", "sint"],
  [2, "dy", "sint"],
]);
S.MouseButton = schema("MouseButton", [
  [1, "button", "uint"],
  [2, "pressed", "bool"],
]);
S.Key = schema("Key", [
  [1, "keycode", "uint"],
  [2, "pressed", "bool"],
]);
S.Scroll = schema("Scroll", [
  [1, "dx", "float"],
  [2, "dy", "float"],
]);
S.GamepadAxis = schema("GamepadAxis", [
  [1, "axis", "uint"],
  [2, "value", "float"],
]);
S.GamepadButton = schema("GamepadButton", [
  [1, "button", "uint"],
  [2, "pressed", "bool"],
]);
S.GamepadMessage = schema("GamepadMessage", [
  [1, "gamepad_id", "uint"],
  [2, "axes", "message", m("GamepadAxis"), R],
  [3, "buttons", "message", m("GamepadButton"), R],
]);
S.MediaMessage = schema("MediaMessage", [
  [1, "video", "message", m("VideoChunk")],
  [2, "fec", "message", m("FecPacket")],
  [3, "audio", "message", m("AudioPacket")],
  [4, "file_chunk", "message", m("FileChunk")],
]);
S.VideoChunk = schema("VideoChunk", [
  [1, "frame_id", "uint"],
  [2, "chunk_index", "uint"],
  [3, "chunk_count", "uint"],
  [4, "timestamp_us", "uint"],
  [5, "keyframe", "bool"],
  [6, "payload", "bytes"],
  [7, "capture_us", "uint"],
  [8, "encode_us", "uint"],
]);
S.AudioPacket = schema("AudioPacket", [
  [1, "timestamp_us", "uint"],
  [2, "payload", "bytes"],
]);
S.FecPacket = schema("FecPacket", [
  [1, "group_id", "uint"],
  [2, "first_packet_id", "uint"],
  [3, "shard_count", "uint"],
  [4, "parity_index", "uint"],
  [5, "payload", "bytes"],
  [6, "shard_lengths", "uint", undefined, R],
  [7, "parity_count", "uint"],
  [8, "scheme", "uint"],
]);
S.FileChunk = schema("FileChunk", [
  [1, "file_id", "uint"],
  [2, "chunk_index", "uint"],
  [3, "payload", "bytes"],
]);
S.HandshakePayload = schema("HandshakePayload", [
  [1, "identity_key", "bytes"],
  [2, "identity_sig", "bytes"],
  [3, "session_alias", "uint"],
  [4, "name", "string"],
]);

export function encodeMessage(msg: Pb): Uint8Array {
  return encode(S.Message, msg);
}

export function decodeMessage(buf: Uint8Array): Pb {
  return decode(S.Message, buf);
}

export function control(content: Pb): Pb {
  return { control: content };
}

export type { Pb };
