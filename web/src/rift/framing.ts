/** RIFT/1 datagram framing (RIFT.md §1): headers, CRC, classification before any crypto. */

import { crc16kermit } from "./crc16.js";

export const HANDSHAKE_HEADER_LEN = 30;
export const TRANSPORT_HEADER_LEN = 18;
export const AEAD_TAG_LEN = 16;
export const DEFAULT_MAX_DATAGRAM = 1400;
export const MIN_MAX_DATAGRAM = 1200;

export interface HandshakeDatagram {
  kind: "handshake";
  handshakeId: Uint8Array;
  messageNumber: number; // 0 (probe), 1, 2 or 3
  header: Uint8Array;
  payload: Uint8Array;
}

export interface TransportDatagram {
  kind: "transport";
  alias: number;
  packetId: number;
  header: Uint8Array;
  payload: Uint8Array;
}

export type Datagram = HandshakeDatagram | TransportDatagram;

export type DropReason =
  | "too_short"
  | "too_long"
  | "bad_magic"
  | "bad_version"
  | "bad_crc"
  | "bad_handshake_message";

export class FramingError extends Error {
  constructor(readonly reason: DropReason) {
    super(reason);
  }
}

function writeU64(buf: Uint8Array, offset: number, value: number): void {
  // packet ids stay far below 2^53 (a session ends long before)
  const hi = Math.floor(value / 0x100000000);
  const lo = value >>> 0;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setUint32(offset, hi);
  v.setUint32(offset + 4, lo);
}

function readU64(buf: Uint8Array, offset: number): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return v.getUint32(offset) * 0x100000000 + v.getUint32(offset + 4);
}

export function encodeHandshakeHeader(handshakeId: Uint8Array, messageNumber: number): Uint8Array {
  if (handshakeId.length !== 12) throw new Error("handshake id must be 12 bytes");
  const h = new Uint8Array(HANDSHAKE_HEADER_LEN);
  h[0] = 0x52;
  h[1] = 0x49;
  h[3] = 1;
  h.set(handshakeId, 8);
  writeU64(h, 20, messageNumber);
  const crc = crc16kermit(h, 28);
  h[28] = crc >> 8;
  h[29] = crc & 0xff;
  return h;
}

export function encodeTransportHeader(alias: number, packetId: number): Uint8Array {
  if (!(alias > 0 && alias <= 0xffffffff)) throw new Error("session alias must be a non-zero u32");
  const h = new Uint8Array(TRANSPORT_HEADER_LEN);
  h[0] = 0x52;
  h[1] = 0x49;
  h[3] = 1;
  new DataView(h.buffer).setUint32(4, alias);
  writeU64(h, 8, packetId);
  const crc = crc16kermit(h, 16);
  h[16] = crc >> 8;
  h[17] = crc & 0xff;
  return h;
}

/** Classify and check one datagram; throws FramingError with the reason. */
export function parseDatagram(data: Uint8Array, maxSize = DEFAULT_MAX_DATAGRAM): Datagram {
  const n = data.length;
  if (n < TRANSPORT_HEADER_LEN) throw new FramingError("too_short");
  if (n > maxSize) throw new FramingError("too_long");
  if (data[0] !== 0x52 || data[1] !== 0x49) throw new FramingError("bad_magic");
  if (data[2] !== 0 || data[3] !== 1) throw new FramingError("bad_version");
  if (data[4] === 0 && data[5] === 0 && data[6] === 0 && data[7] === 0) {
    if (n < HANDSHAKE_HEADER_LEN) throw new FramingError("too_short");
    if (crc16kermit(data, 28) !== ((data[28] << 8) | data[29])) throw new FramingError("bad_crc");
    const messageNumber = readU64(data, 20);
    if (messageNumber > 3) throw new FramingError("bad_handshake_message");
    return {
      kind: "handshake",
      handshakeId: data.subarray(8, 20),
      messageNumber,
      header: data.subarray(0, HANDSHAKE_HEADER_LEN),
      payload: data.subarray(HANDSHAKE_HEADER_LEN),
    };
  }
  if (crc16kermit(data, 16) !== ((data[16] << 8) | data[17])) throw new FramingError("bad_crc");
  const alias = new DataView(data.buffer, data.byteOffset, 8).getUint32(4);
  return {
    kind: "transport",
    alias,
    packetId: readU64(data, 8),
    header: data.subarray(0, TRANSPORT_HEADER_LEN),
    payload: data.subarray(TRANSPORT_HEADER_LEN),
  };
}
