// The page's ClientSession against a scripted host made of the same primitives (the host side
// of RIFT.md §2–§4): handshake with identity proofs, Hello/HelloAck, a video frame, Ping/Pong,
// NACK answers, the identity check — and thousands of malformed datagrams, authenticated or
// not, that must never throw.
import "./webcrypto.js";
import assert from "node:assert/strict";
import { test } from "node:test";
import { concat } from "../src/rift/bytes.js";
import { TransportOpener, TransportSealer } from "../src/rift/crypto.js";
import { TRANSPORT_HEADER_LEN, encodeHandshakeHeader, parseDatagram } from "../src/rift/framing.js";
import { rsEncode } from "../src/rift/gf256.js";
import { verifyPeerPayload } from "../src/rift/handshake.js";
import { Identity } from "../src/rift/identity.js";
import { FecScheme, S, decodeMessage, encodeMessage } from "../src/rift/messages.js";
import { NoiseXX, generateKeyPair } from "../src/rift/noise.js";
import { encode } from "../src/rift/proto.js";
import { ClockOffsetEstimator } from "../src/rift/clock.js";
import { ClientSession, DEFAULT_CONFIG, type SessionEvent } from "../src/rift/session.js";

const ALIAS = 0x1234abcd;

/** A deterministic PRNG so a failing case can be replayed. */
function rng(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  };
}

class ScriptedHost {
  readonly identity = Identity.generate();
  private readonly noise: NoiseXX;
  private readonly static_ = generateKeyPair();
  sealer: TransportSealer | null = null;
  opener: TransportOpener | null = null;
  clientId = "";

  constructor() {
    this.noise = new NoiseXX(false, this.static_);
  }

  /** msg1 in → msg2 out */
  answer(msg1: Uint8Array): Uint8Array {
    const d = parseDatagram(msg1);
    assert.equal(d.kind, "handshake");
    if (d.kind !== "handshake") throw new Error();
    this.noise.readMessage(d.payload);
    const payload = encode(S.HandshakePayload, {
      identity_key: this.identity.publicKey,
      identity_sig: this.identity.signStaticKey(this.static_.publicKey),
      session_alias: ALIAS,
      name: "scripted",
    });
    return concat(encodeHandshakeHeader(d.handshakeId, 2), this.noise.writeMessage(payload));
  }

  complete(msg3: Uint8Array): void {
    const d = parseDatagram(msg3);
    if (d.kind !== "handshake") throw new Error("msg3 expected");
    const payload = this.noise.readMessage(d.payload);
    this.clientId = verifyPeerPayload(this.noise.remoteStatic, payload).wavryId;
    const [c2h, h2c] = this.noise.split();
    this.sealer = new TransportSealer(h2c, ALIAS);
    this.opener = new TransportOpener(c2h);
  }

  seal(msg: Record<string, unknown>): Uint8Array {
    return this.sealer!.seal(encodeMessage(msg))[1];
  }

  open(dgram: Uint8Array): Record<string, unknown> {
    const d = parseDatagram(dgram);
    if (d.kind !== "transport") throw new Error("transport expected");
    const plain = this.opener!.open(d.header, d.packetId, d.payload);
    assert.ok(plain, "the host cannot open the client's datagram");
    return decodeMessage(plain!);
  }
}

function establish(seed = 1, expected: string | null = null): { host: ScriptedHost; client: ClientSession; events: SessionEvent[]; t: number } {
  const host = new ScriptedHost();
  const client = new ClientSession(Identity.generate(), { ...DEFAULT_CONFIG }, expected ?? host.identity.wavryId, rng(seed));
  let t = 1000;
  client.connect(t);
  const [msg1] = client.takeOutput();
  client.receiveDatagram(host.answer(msg1), (t += 0.001));
  const out = client.takeOutput();
  host.complete(out[0]);
  const hello = host.open(out[1]);
  assert.ok((hello.control as Record<string, unknown>).hello, "Hello follows msg3");
  const events = client.takeEvents();
  return { host, client, events, t };
}

/** An established session the host accepted at 1001.001 s (60 fps), its events and output taken. */
function accepted(seed: number): { host: ScriptedHost; client: ClientSession; t: number } {
  const { host, client } = establish(seed);
  const t = 1001.001;
  client.receiveDatagram(host.seal({ control: { hello_ack: { accepted: true, selected_codec: 1, session_alias: ALIAS, fps: 60 } } }), t);
  client.takeEvents();
  client.takeOutput();
  return { host, client, t };
}

test("handshake, Hello/HelloAck, a video frame, Ping/Pong and a NACK answer", () => {
  const { host, client, events } = establish();
  assert.equal(events[0].type, "handshake");
  let t = 1001;
  client.receiveDatagram(
    host.seal({ control: { hello_ack: { accepted: true, selected_codec: 1, session_alias: ALIAS, fps: 30 } } }),
    (t += 0.001),
  );
  const ev = client.takeEvents();
  assert.equal(ev[0].type, "accepted");
  assert.equal(client.state, "active");
  // the client pings at once after acceptance
  const ping = client.takeOutput().map((d) => host.open(d)).find((m) => (m.control as Record<string, unknown>)?.ping);
  assert.ok(ping, "no ping after HelloAck");
  const ts = ((ping!.control as Record<string, Record<string, number>>).ping.timestamp_us) ?? 0;
  client.receiveDatagram(host.seal({ control: { pong: { timestamp_us: ts, host_time_us: 5_000_000_000 } } }), (t += 0.002));
  assert.ok(client.clockOffset !== null);
  // a keyframe in two chunks, the second first
  const chunk = (i: number, payload: Uint8Array) => ({
    media: { video: { frame_id: 1, chunk_index: i, chunk_count: 2, timestamp_us: 42, keyframe: true, payload } },
  });
  client.receiveDatagram(host.seal(chunk(0, Uint8Array.of(1, 2, 3))), (t += 0.001));
  client.receiveDatagram(host.seal(chunk(1, Uint8Array.of(4, 5))), (t += 0.001));
  const frames = client.takeEvents().filter((e) => e.type === "frame");
  assert.equal(frames.length, 1);
  if (frames[0].type === "frame") assert.deepEqual(Array.from(frames[0].frame.data), [1, 2, 3, 4, 5]);
  // the host NACKs the client's Hello: the same bytes come back
  client.takeOutput();
  client.receiveDatagram(host.seal({ control: { nack: { packet_ids: [1] } } }), (t += 0.001));
  const resent = client.takeOutput();
  assert.equal(resent.length, 1);
  assert.ok((host.open(resent[0]).control as Record<string, unknown>).hello);
});

test("a host that proves another identity is refused before any Hello", () => {
  const host = new ScriptedHost();
  const other = Identity.generate().wavryId;
  const client = new ClientSession(Identity.generate(), { ...DEFAULT_CONFIG }, other, rng(3));
  client.connect(1);
  const [msg1] = client.takeOutput();
  client.receiveDatagram(host.answer(msg1), 1.01);
  const ev = client.takeEvents();
  assert.equal(ev.length, 1);
  assert.equal(ev[0].type, "closed");
  if (ev[0].type === "closed") {
    assert.equal(ev[0].kind, "identity_mismatch");
    assert.ok(ev[0].message.includes(host.identity.wavryId) && ev[0].message.includes(other));
  }
  assert.deepEqual(client.takeOutput(), [], "nothing sent to a host that failed the check");
});

test("malformed datagrams, authenticated or not, never throw and change nothing fatal", () => {
  const { host, client } = establish(7);
  let t = 1001;
  client.receiveDatagram(host.seal({ control: { hello_ack: { accepted: true, selected_codec: 1, session_alias: ALIAS } } }), (t += 0.001));
  client.takeEvents();
  const random = rng(99);
  const valid = encodeMessage({ media: { video: { frame_id: 5, chunk_index: 0, chunk_count: 1, timestamp_us: 7, keyframe: true, payload: random(50) } } });
  for (let i = 0; i < 3000; i++) {
    const r = random(2);
    let d: Uint8Array;
    if (r[0] % 3 === 0) {
      d = random(r[1] * 6); // garbage, any length
    } else if (r[0] % 3 === 1) {
      const plain = random(r[1] % 200); // authentic, but not a valid Message
      d = host.sealer!.seal(plain)[1];
    } else {
      const m = valid.slice(); // authentic, a mutated valid Message
      m[r[1] % m.length] ^= 1 << (r[0] % 8);
      d = host.sealer!.seal(m)[1];
    }
    assert.doesNotThrow(() => client.receiveDatagram(d, (t += 0.0001)), `case ${i}`);
    assert.doesNotThrow(() => client.handleTimer(t));
    client.takeOutput();
    client.takeEvents();
  }
  assert.equal(client.state, "active");
  assert.ok(client.counters.malformed > 100 && client.counters.framingDrops > 100, JSON.stringify(client.counters));
});

test("feedback and chunk times carry when a datagram arrived, not when it was processed", () => {
  const { host, client, t } = accepted(3);
  // three chunks that reached the page 1 ms apart, processed together 5 ms after the first
  const arrivals = [t + 0.01, t + 0.011, t + 0.012];
  const late = t + 0.015;
  arrivals.forEach((at, i) => {
    const payload = Uint8Array.of(i);
    const video = { frame_id: 1, chunk_index: i, chunk_count: 3, timestamp_us: 7, keyframe: true, payload };
    client.receiveDatagram(host.seal({ media: { video } }), late, at);
  });
  const frame = client.takeEvents().find((e) => e.type === "frame");
  assert.ok(frame && frame.type === "frame");
  assert.equal(frame.frame.firstChunkAt, arrivals[0]);
  assert.equal(frame.frame.lastChunkAt, arrivals[2]);
  // the next TransportFeedback: arrival deltas 1 ms apart (processing time would give 0)
  client.handleTimer(late + 0.06);
  const reports = client
    .takeOutput()
    .map((d) => host.open(d))
    .map((m) => (m.control as Record<string, Record<string, unknown>> | undefined)?.transport_feedback)
    .filter((f) => f !== undefined);
  assert.ok(reports.length > 0, "no TransportFeedback");
  const deltas = reports.flatMap((f) => (f!.arrival_delta_us as number[] | undefined) ?? []);
  assert.deepEqual(deltas.slice(-3).map((d) => d - deltas[deltas.length - 3]), [0, 1000, 2000]);
});

test("a chunk FEC rebuilt arrived when the datagram that completed its group did", () => {
  const { host, client, t } = accepted(4);
  // a three-chunk frame and one Reed–Solomon parity over its datagrams; the last chunk is lost
  const sealed = [0, 1, 2].map((i) => {
    const video = { frame_id: 1, chunk_index: i, chunk_count: 3, timestamp_us: 7, keyframe: true, payload: Uint8Array.of(i, i) };
    return host.sealer!.seal(encodeMessage({ media: { video } }));
  });
  const shards = sealed.map(([, d]) => d.subarray(TRANSPORT_HEADER_LEN));
  const [parity] = rsEncode(shards, 1);
  const fec = {
    group_id: 1,
    first_packet_id: sealed[0][0],
    shard_count: 3,
    parity_index: 0,
    parity_count: 1,
    payload: parity,
    shard_lengths: shards.map((x) => x.length),
    scheme: FecScheme.FEC_REED_SOLOMON,
  };
  // read 1 ms apart, processed together 5 ms after the first arrived
  const arrivals = [t + 0.01, t + 0.011, t + 0.012];
  const late = t + 0.015;
  client.receiveDatagram(sealed[0][1], late, arrivals[0]);
  client.receiveDatagram(sealed[1][1], late, arrivals[1]);
  client.receiveDatagram(host.seal({ media: { fec } }), late, arrivals[2]);
  assert.equal(client.counters.fecRecovered, 1);
  const frame = client.takeEvents().find((e) => e.type === "frame");
  assert.ok(frame && frame.type === "frame");
  assert.equal(frame.frame.lastChunkAt, arrivals[2]);
});

test("the clock offset: a slow first round trip gives way to quick ones, pinged 100 ms apart", () => {
  const est = new ClockOffsetEstimator();
  est.add(10.0, 10.2, 10.2); // the host answered 200 ms late: 100 ms off
  assert.ok(Math.abs(est.offset! - 0.1) < 1e-9);
  est.add(10.3, 10.3005, 10.30025); // a quick round trip: the clocks agree
  assert.ok(Math.abs(est.offset!) < 1e-9);
  // after acceptance the first five Pings go 100 ms apart, then every 500 ms
  const { host, client } = establish(5);
  let t = 1001;
  client.receiveDatagram(host.seal({ control: { hello_ack: { accepted: true, selected_codec: 1, session_alias: ALIAS, fps: 60 } } }), t);
  const pingTimes: number[] = [];
  for (let i = 0; i <= 120; i++, t = 1001 + i * 0.01) {
    client.handleTimer(t);
    for (const d of client.takeOutput()) if ((host.open(d).control as Record<string, unknown> | undefined)?.ping) pingTimes.push(t - 1001);
  }
  const gaps = pingTimes.slice(1).map((x, i) => x - pingTimes[i]);
  assert.equal(gaps.length, 5, JSON.stringify(pingTimes));
  gaps.forEach((g, i) => assert.ok(Math.abs(g - (i < 4 ? 0.1 : 0.5)) < 0.015, JSON.stringify(pingTimes)));
});
