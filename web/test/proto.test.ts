import assert from "node:assert/strict";
import { test } from "node:test";
import { fromHex, toHex } from "../src/rift/bytes.js";
import { S, decodeMessage, encodeMessage } from "../src/rift/messages.js";
import { ProtoError, type Schema, decode } from "../src/rift/proto.js";
import { pairingProof } from "../src/rift/session.js";
import { fixture } from "./vectors.js";

const b64 = (s: string) => Uint8Array.from(Buffer.from(s, "base64"));

interface DescField {
  n: number;
  name: string;
  kind: string;
  repeated: boolean;
  msg: string | null;
}

const schema = fixture<Record<string, DescField[]>>("schema.json");

test("codec tables match rift.proto's compiled descriptor", { skip: schema === null && "run from pytest (tests/web)" }, () => {
  for (const [name, fields] of Object.entries(schema!)) {
    const ours: Schema | undefined = S[name];
    assert.ok(ours, `message ${name} missing from messages.ts`);
    const mine = ours.fields.map((f) => ({
      n: f.n,
      name: f.name,
      kind: f.kind,
      repeated: !!f.repeated,
      msg: f.msg ? f.msg().name : null,
    }));
    const theirs = fields.map((f) => ({ ...f })).sort((a, b) => a.n - b.n);
    assert.deepEqual(mine, theirs, name);
  }
});

/** Compare a decoded value with protobuf's JSON mapping of the same message. */
function same(schemaName: string, decoded: Record<string, unknown>, json: Record<string, unknown>): void {
  const sch = S[schemaName];
  for (const f of sch.fields) {
    const j = json[f.name];
    const d = decoded[f.name];
    if (j === undefined) {
      const empty = d === undefined || (Array.isArray(d) && d.length === 0);
      assert.ok(empty || (f.kind === "message" && schemaName === "Message"), `${schemaName}.${f.name} should be absent`);
      continue;
    }
    const one = (jv: unknown, dv: unknown) => {
      switch (f.kind) {
        case "uint":
        case "sint":
          return assert.equal(dv, Number(jv), `${schemaName}.${f.name}`);
        case "float":
          return assert.ok(Math.abs((dv as number) - Number(jv)) < 1e-6, `${schemaName}.${f.name}`);
        case "bool":
        case "string":
          return assert.equal(dv, jv, `${schemaName}.${f.name}`);
        case "bytes":
          return assert.equal(toHex(dv as Uint8Array), toHex(b64(jv as string)), `${schemaName}.${f.name}`);
        case "message":
          return same(f.msg!().name, dv as Record<string, unknown>, jv as Record<string, unknown>);
      }
    };
    if (f.repeated) {
      assert.equal((d as unknown[]).length, (j as unknown[]).length, `${schemaName}.${f.name} length`);
      (j as unknown[]).forEach((jv, i) => one(jv, (d as unknown[])[i]));
    } else {
      one(j, d);
    }
  }
}

const messages = fixture<Array<{ bytes: string; json: Record<string, unknown> }>>("messages.json");

test("decodes what Python's protobuf encodes, and encodes it back byte for byte", { skip: messages === null && "run from pytest (tests/web)" }, () => {
  assert.ok(messages!.length >= 10);
  for (const m of messages!) {
    const bytes = b64(m.bytes);
    const decoded = decodeMessage(bytes);
    same("Message", decoded, m.json);
    assert.equal(toHex(encodeMessage(decoded)), toHex(bytes));
  }
});

test("malformed input raises ProtoError, never anything else", () => {
  const bad = [
    fromHex("0a"), // truncated length
    fromHex("0a05"), // length past the end
    fromHex("ffffffffffffffffffffff"), // varint too long
    fromHex("0a020d00"), // fixed32 where a message is expected, truncated
    fromHex("0b"), // wire type 3 (groups)
  ];
  for (const b of bad) {
    assert.throws(() => decodeMessage(b), ProtoError, toHex(b));
  }
  // unknown fields are skipped
  assert.deepEqual(decode(S.Ping, fromHex("0801f80102")), { timestamp_us: 1 });
});

const pairing = fixture<{ code: string; hash: string; proof: string }>("pairing.json");

test("pairing proof equals the Python host's", { skip: pairing === null && "run from pytest (tests/web)" }, () => {
  assert.equal(toHex(pairingProof(pairing!.code, fromHex(pairing!.hash))), pairing!.proof);
});
