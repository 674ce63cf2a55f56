import assert from "node:assert/strict";
import { test } from "node:test";
import { fromHex, toHex, utf8 } from "../src/rift/bytes.js";
import { crc16kermit } from "../src/rift/crc16.js";
import { FramingError, encodeHandshakeHeader, encodeTransportHeader, parseDatagram } from "../src/rift/framing.js";
import { ReplayWindow } from "../src/rift/crypto.js";

test("CRC-16/KERMIT check value", () => {
  assert.equal(crc16kermit(utf8.encode("123456789")), 0x2189);
});

test("golden headers (RIFT.md §1)", () => {
  assert.equal(toHex(encodeTransportHeader(0x12345678, 999)), "52490001123456780000000000000" + "3e73d23");
  assert.equal(
    toHex(encodeHandshakeHeader(fromHex("0102030405060708090a0b0c"), 1)),
    "52490001000000000102030405060708090a0b0c0000000000000001c1e0",
  );
});

test("parse rejects bad framing in the spec's order", () => {
  const good = encodeTransportHeader(7, 1);
  const dgram = new Uint8Array(40);
  dgram.set(good);
  assert.equal(parseDatagram(dgram).kind, "transport");
  const reason = (d: Uint8Array) => {
    try {
      parseDatagram(d);
      return "ok";
    } catch (e) {
      return (e as FramingError).reason;
    }
  };
  assert.equal(reason(dgram.subarray(0, 10)), "too_short");
  assert.equal(reason(new Uint8Array(1500)), "too_long");
  const bad = dgram.slice();
  bad[0] = 0;
  assert.equal(reason(bad), "bad_magic");
  const ver = dgram.slice();
  ver[3] = 2;
  assert.equal(reason(ver), "bad_version");
  const crc = dgram.slice();
  crc[10] ^= 1;
  assert.equal(reason(crc), "bad_crc");
  const hs = new Uint8Array(40);
  hs.set(encodeHandshakeHeader(new Uint8Array(12).fill(3), 2));
  const p = parseDatagram(hs);
  assert.equal(p.kind, "handshake");
  if (p.kind === "handshake") assert.equal(p.messageNumber, 2);
});

test("replay window: new, duplicate, too old, far jump", () => {
  const w = new ReplayWindow(2048);
  assert.ok(w.check(5));
  w.mark(5);
  assert.ok(!w.check(5));
  assert.ok(w.check(3));
  w.mark(3);
  assert.ok(!w.check(3));
  w.mark(3000);
  assert.ok(!w.check(5), "below the window");
  assert.ok(w.check(2999));
  assert.ok(!w.check(3000));
  w.mark(2999);
  assert.ok(!w.check(2999));
  assert.ok(w.check(2000));
  w.mark(10000);
  assert.ok(w.check(9000) && !w.check(7000) && !w.check(0));
});
