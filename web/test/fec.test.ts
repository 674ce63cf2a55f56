import assert from "node:assert/strict";
import { test } from "node:test";
import { fromHex, toHex } from "../src/rift/bytes.js";
import { FecDecoder } from "../src/rift/fec.js";
import { generator, rsDecode, rsEncode } from "../src/rift/gf256.js";
import { FecScheme } from "../src/rift/messages.js";
import { vector } from "./vectors.js";

interface RsCase {
  k: number;
  m: number;
  shard_lengths: number[];
  shards_hex: string[];
  parity_coefficients?: number[][];
  parities_hex: string[];
}

const rs = vector<{ cases: RsCase[] }>("fec/reed_solomon_gf256.json").cases;

test("Reed–Solomon vectors: coefficients and parities", () => {
  assert.ok(rs.length > 0);
  for (const c of rs) {
    const g = generator(c.k, c.m);
    if (c.parity_coefficients) {
      for (let j = 0; j < c.m; j++) assert.deepEqual(g[c.k + j], c.parity_coefficients[j], `k=${c.k} m=${c.m} row ${j}`);
    }
    const parities = rsEncode(c.shards_hex.map(fromHex), c.m);
    assert.deepEqual(parities.map(toHex), c.parities_hex, `k=${c.k} m=${c.m}`);
  }
});

test("Reed–Solomon vectors: any m losses are rebuilt", () => {
  for (const c of rs) {
    const shards = c.shards_hex.map(fromHex);
    const parities = c.parities_hex.map(fromHex);
    const len = Math.max(...c.shard_lengths);
    // lose the first min(m, k) data shards (the hardest case: all parities needed)
    const lost = Math.min(c.m, c.k);
    const present = new Map<number, Uint8Array>();
    for (let i = lost; i < c.k; i++) present.set(i, shards[i]);
    for (let j = 0; j < c.m && present.size < c.k; j++) present.set(c.k + j, parities[j]);
    const data = rsDecode(c.k, c.m, present, len);
    for (let i = 0; i < c.k; i++) assert.equal(toHex(data[i].subarray(0, c.shard_lengths[i])), c.shards_hex[i]);
  }
});

function fecPacket(scheme: number, first: number, k: number, m: number, j: number, shards: Uint8Array[], parity: Uint8Array) {
  return {
    group_id: first,
    first_packet_id: first,
    shard_count: k,
    parity_index: j,
    parity_count: m,
    payload: parity,
    shard_lengths: shards.map((s) => s.length),
    scheme,
  };
}

function randomShards(k: number): Uint8Array[] {
  return Array.from({ length: k }, (_, i) => Uint8Array.from({ length: 20 + ((i * 37) % 50) }, (_, b) => (b * 31 + i * 7) & 255));
}

test("decoder repairs a burst of m losses with Reed–Solomon", () => {
  const k = 10;
  const m = 3;
  const shards = randomShards(k);
  const parities = rsEncode(shards, m);
  const dec = new FecDecoder();
  const lost = new Set([2, 3, 7]);
  const got: Array<[number, Uint8Array]> = [];
  for (let i = 0; i < k; i++) if (!lost.has(i)) got.push(...dec.onDatagram(100 + i, shards[i], 0));
  for (let j = 0; j < m; j++) got.push(...dec.onParity(fecPacket(FecScheme.FEC_REED_SOLOMON, 100, k, m, j, shards, parities[j]), 0, 110 + j));
  assert.deepEqual(got.map(([p]) => p).sort(), [102, 103, 107]);
  for (const [p, payload] of got) assert.equal(toHex(payload), toHex(shards[p - 100]));
});

test("decoder repairs one loss per interleaved XOR class and refuses two", () => {
  const k = 6;
  const m = 2;
  const shards = randomShards(k);
  const xor = (cls: number) => {
    const out = new Uint8Array(Math.max(...shards.map((s) => s.length)));
    for (let i = cls; i < k; i += m) shards[i].forEach((b, n) => (out[n] ^= b));
    return out;
  };
  const dec = new FecDecoder();
  // lose 1 and 2 (different classes: both repairable), then a second group losing 0 and 2
  for (const i of [0, 3, 4, 5]) dec.onDatagram(10 + i, shards[i], 0);
  const a = dec.onParity(fecPacket(FecScheme.FEC_XOR_INTERLEAVED, 10, k, m, 0, shards, xor(0)), 0, 16);
  const b = dec.onParity(fecPacket(FecScheme.FEC_XOR_INTERLEAVED, 10, k, m, 1, shards, xor(1)), 0, 17);
  assert.deepEqual([...a, ...b].map(([p, d]) => [p, toHex(d)]), [
    [12, toHex(shards[2])],
    [11, toHex(shards[1])],
  ]);
  const dec2 = new FecDecoder();
  for (const i of [1, 3, 4, 5]) dec2.onDatagram(10 + i, shards[i], 0);
  assert.deepEqual(dec2.onParity(fecPacket(FecScheme.FEC_XOR_INTERLEAVED, 10, k, m, 0, shards, xor(0)), 0, 16), []);
});
