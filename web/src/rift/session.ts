/**
 * The client side of a RIFT session in the page, sans-I/O like src/wavry/rift/client.py:
 * handshake (with the host identity check), Hello, pairing, Ping/Pong clock offset, liveness,
 * and the receive half of the media transport (AEAD + replay window, FEC, NACK, feedback, frame
 * assembly). The carrier (WebTransport or WebSocket) feeds `receiveDatagram(data, now)` and
 * `handleTimer(now)`, sends what `takeOutput()` returns, and reads `takeEvents()`.
 * Times are seconds on the page's wall-aligned clock (performance.timeOrigin + now()).
 */

import { AssembledFrame, FrameAssembler } from "./assembler.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { concat, equal, utf8 } from "./bytes.js";
import { ClockOffsetEstimator } from "./clock.js";
import { ReplayWindow, TransportOpener, TransportSealer } from "./crypto.js";
import { FecDecoder } from "./fec.js";
import { FeedbackBuilder, StatsAccumulator } from "./feedback.js";
import {
  FramingError,
  type TransportDatagram,
  TRANSPORT_HEADER_LEN,
  encodeTransportHeader,
  parseDatagram,
} from "./framing.js";
import { HandshakeError, InitiatorHandshake } from "./handshake.js";
import type { Identity } from "./identity.js";
import { Codec, FecScheme, Platform, RejectReason, type Pb, decodeMessage, encodeMessage } from "./messages.js";
import { NackTracker, nackBatches } from "./nack.js";
import { ProtoError } from "./proto.js";

export const PROTOCOL_VERSION = 1;
const PAIR_CONTEXT = utf8.encode("RIFT/1 pair");

export type CloseKind =
  | "identity_mismatch"
  | "rejected"
  | "peer_disconnect"
  | "connect_failed"
  | "lost"
  | "user"
  | "protocol";

export type SessionEvent =
  | { type: "handshake"; hostId: string; hostName: string; seconds: number }
  | { type: "accepted"; ack: Pb }
  | { type: "rejected"; reason: number; message: string }
  | { type: "paired"; ok: boolean; message: string }
  | { type: "closed"; kind: CloseKind; message: string }
  | { type: "frame"; frame: AssembledFrame }
  | { type: "message"; msg: Pb }
  | { type: "pong"; rtt: number; offset: number }
  | { type: "stalled"; silence: number }
  | { type: "resumed" };

export interface SessionConfig {
  name: string;
  codecs: number[];
  fecSchemes: number[];
  maxWidth: number;
  maxHeight: number;
  maxFps: number;
  /** largest datagram this side sends (the carrier's limit, RIFT.md §11) */
  maxDatagram: number;
}

export const DEFAULT_CONFIG: SessionConfig = {
  name: "browser",
  codecs: [Codec.H264],
  fecSchemes: [FecScheme.FEC_REED_SOLOMON, FecScheme.FEC_XOR_INTERLEAVED],
  maxWidth: 1920,
  maxHeight: 1080,
  maxFps: 60,
  maxDatagram: 1200,
};

export const TIMING = {
  msg1Retry: 0.25,
  msg1MaxRetry: 2.0,
  handshakeTimeout: 10.0,
  helloRetry: 0.2,
  helloTimeout: 10.0,
  pingInterval: 0.5,
  // ... but the first `startPings` after the host accepts go this often: the first can meet a
  // host busy starting the stream, and the clock offset needs a quick round trip
  startPingInterval: 0.1,
  startPings: 5,
  stallAfter: 3.0,
  lostAfter: 10.0,
};

type State = "idle" | "handshake" | "hello" | "pairing" | "active" | "closed";

/** Control messages never resent on a NACK (RIFT transport: Karn's rule for RTT samples). */
const NOT_RESENT = new Set(["ping", "pong", "nack"]);

export interface TransportCounters {
  received: number;
  replayed: number;
  authFailed: number;
  malformed: number;
  framingDrops: number;
  fecRecovered: number;
  nacksSent: number;
  nackedIds: number;
  resent: number;
  bytesReceived: number;
  sent: number;
}

export function pairingProof(code: string, handshakeHash: Uint8Array): Uint8Array {
  return blake2s(concat(PAIR_CONTEXT, handshakeHash), { key: utf8.encode(code), dkLen: 32 });
}

export class ClientSession {
  state: State = "idle";
  hostId: string | null = null;
  hostName = "";
  ack: Pb | null = null;
  readonly clock = new ClockOffsetEstimator();
  readonly counters: TransportCounters = {
    received: 0,
    replayed: 0,
    authFailed: 0,
    malformed: 0,
    framingDrops: 0,
    fecRecovered: 0,
    nacksSent: 0,
    nackedIds: 0,
    resent: 0,
    bytesReceived: 0,
    sent: 0,
  };
  readonly assembler = new FrameAssembler();
  readonly fec = new FecDecoder();
  readonly nack = new NackTracker((pid) => this.fec.willRepair(pid));
  readonly feedback = new FeedbackBuilder();
  readonly statsAcc = new StatsAccumulator();

  private events: SessionEvent[] = [];
  private out: Uint8Array[] = [];
  private hs: InitiatorHandshake | null = null;
  private hsStarted = 0;
  private msg1Next = 0;
  private msg1Delay = 0;
  private hash: Uint8Array = new Uint8Array(0);
  private hostConfirmed = false;
  private helloStarted = 0;
  private helloNext = 0;
  private pingNext = 0;
  private startPingsLeft = 0; // Pings left at the start interval (set when the host accepts)
  private pings = new Map<number, number>();
  private lastRx = 0;
  private stalled = false;
  private alias = 0;
  private sealer: TransportSealer | null = null;
  private opener: TransportOpener | null = null;
  private replay = new ReplayWindow(4096);
  private history = new Map<number, [Uint8Array, number]>();

  constructor(
    private readonly identity: Identity,
    readonly config: SessionConfig,
    readonly expectedHostId: string | null,
    private readonly random: (n: number) => Uint8Array,
  ) {}

  // ---- public API ----------------------------------------------------------------------

  connect(now: number): void {
    if (this.state !== "idle") throw new Error("connect() may be called once");
    let hid = this.random(12);
    while (hid.every((b) => b === 0)) hid = this.random(12);
    this.hs = new InitiatorHandshake(this.identity, hid, this.config.name);
    this.hsStarted = now;
    this.msg1Delay = TIMING.msg1Retry;
    this.msg1Next = now + this.msg1Delay;
    this.state = "handshake";
    this.out.push(this.hs.msg1);
  }

  /** One datagram, processed at `now`; `arrival` (same clock) is when it reached the page, if the
   * carrier read it before the session could process it: what TransportFeedback reports and
   * the frame's chunk times use, so that time spent processing earlier datagrams does not look
   * like queueing on the path to the host's DELTA (RIFT.md §8; the native client uses the
   * kernel's receive timestamp the same way). */
  receiveDatagram(data: Uint8Array, now: number, arrival: number = now): void {
    let d;
    try {
      d = parseDatagram(data, 65507);
    } catch (e) {
      if (e instanceof FramingError) {
        this.counters.framingDrops++;
        return;
      }
      throw e;
    }
    if (d.kind === "handshake") this.onHandshake(d.handshakeId, d.messageNumber, d.payload, now);
    else this.onTransport(d, now, false, arrival);
  }

  takeOutput(): Uint8Array[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  takeEvents(): SessionEvent[] {
    const ev = this.events;
    this.events = [];
    return ev;
  }

  get hasEvents(): boolean {
    return this.events.length > 0;
  }

  get handshakeHash(): Uint8Array {
    return this.hash;
  }

  nextTimer(): number | null {
    const s = this.state;
    if (s === "handshake") return Math.min(this.msg1Next, this.hsStarted + TIMING.handshakeTimeout);
    if (s !== "hello" && s !== "pairing" && s !== "active") return null;
    const t = [this.pingNext, this.lastRx + (this.stalled ? TIMING.lostAfter : TIMING.stallAfter)];
    if (s === "hello") t.push(this.helloNext);
    for (const x of [
      this.nack.nextTimer(),
      this.feedback.nextTimer(),
      this.statsAcc.nextTimer(),
      this.assembler.nextTimer(),
    ]) {
      if (x !== null) t.push(x);
    }
    return Math.min(...t);
  }

  handleTimer(now: number): void {
    const s = this.state;
    if (s === "handshake") {
      if (now >= this.hsStarted + TIMING.handshakeTimeout) {
        this.close(
          "connect_failed",
          "no handshake answer from the host within 10 s (is `wavry host --web` running and reachable?)",
        );
      } else if (now >= this.msg1Next && this.hs !== null) {
        this.out.push(this.hs.msg1);
        this.msg1Delay = Math.min(this.msg1Delay * 2, TIMING.msg1MaxRetry);
        this.msg1Next = now + this.msg1Delay;
      }
      return;
    }
    if (s !== "hello" && s !== "pairing" && s !== "active") return;
    const silence = now - this.lastRx;
    if (silence >= TIMING.lostAfter) {
      this.close("lost", `connection lost: no packets from the host for ${silence.toFixed(0)} s`);
      return;
    }
    if (silence >= TIMING.stallAfter && !this.stalled) {
      this.stalled = true;
      this.events.push({ type: "stalled", silence });
    }
    this.sendNacks(this.nack.poll(now), now);
    this.expireHistory(now);
    const fb = this.feedback.build(now);
    if (fb !== null) this.send({ control: { transport_feedback: fb } }, now);
    const report = this.statsAcc.build(now);
    if (report !== null) this.send({ control: { stats: report } }, now);
    this.assembled(this.assembler.poll(now), now);
    if (this.state === "hello" && now >= this.helloNext) {
      if (now >= this.helloStarted + TIMING.helloTimeout) {
        this.close("connect_failed", "the host did not answer Hello within 10 s");
        return;
      }
      this.sendHello(now);
    }
    if (now >= this.pingNext) this.ping(now);
  }

  ping(now: number): void {
    if (this.sealer === null) return;
    let ts = Math.round(now * 1e6);
    while (this.pings.has(ts)) ts++;
    this.pings.set(ts, now);
    if (this.pings.size > 64) this.pings.delete(this.pings.keys().next().value as number);
    this.send({ control: { ping: { timestamp_us: ts } } }, now);
    this.startPingsLeft = Math.max(0, this.startPingsLeft - 1);
    this.pingNext = now + (this.startPingsLeft > 0 ? TIMING.startPingInterval : TIMING.pingInterval);
  }

  /** Answer PAIRING_REQUIRED with the 6-digit code the host shows. */
  pair(code: string, now: number): void {
    const clean = code.replace(/\s+/g, "");
    if (this.state !== "pairing") throw new Error("the host has not asked for pairing");
    if (!/^[0-9]{6}$/.test(clean)) throw new Error("a pairing code is 6 digits");
    this.send({ control: { pair_request: { proof: pairingProof(clean, this.hash) } } }, now);
  }

  /** Seal and send an application message; returns its packet id. */
  sendMessage(msg: Pb, now: number): number {
    if (this.state !== "active") throw new Error("session is not active");
    return this.send(msg, now);
  }

  /** Largest plaintext a message may have to fit one datagram on this carrier. */
  get maxPlaintext(): number {
    return this.config.maxDatagram - TRANSPORT_HEADER_LEN - 16;
  }

  close(kind: CloseKind, message: string, now?: number): void {
    if (this.state === "closed") return;
    if (now !== undefined && this.sealer !== null && kind === "user") {
      const msg = { control: { disconnect: { reason: 0, message: message.slice(0, 200) } } };
      for (let i = 0; i < 3; i++) this.send(msg, now);
    }
    this.state = "closed";
    this.events.push({ type: "closed", kind, message });
  }

  /** The highest authenticated packet id from the host (for loss figures). */
  get highestReceivedId(): number {
    return this.replay.highestId;
  }

  get clockOffset(): number | null {
    return this.clock.offset;
  }

  // ---- handshake -----------------------------------------------------------------------

  private onHandshake(hid: Uint8Array, n: number, payload: Uint8Array, now: number): void {
    const hs = this.hs;
    if (this.state !== "handshake" || hs === null || n !== 2 || !equal(hid, hs.handshakeId)) {
      this.counters.framingDrops++;
      return;
    }
    let peer;
    try {
      peer = hs.onMsg2(payload);
    } catch (e) {
      if (!(e instanceof HandshakeError)) throw e;
      // possibly forged by someone who saw msg1: start over with a fresh handshake
      this.counters.authFailed++;
      const started = this.hsStarted;
      this.state = "idle";
      this.connect(now);
      this.hsStarted = started;
      return;
    }
    this.hostId = peer.wavryId;
    this.hostName = peer.name;
    if (this.expectedHostId !== null && peer.wavryId !== this.expectedHostId) {
      this.close(
        "identity_mismatch",
        `host identity mismatch: the link names ${this.expectedHostId} but the host proved ` +
          `${peer.wavryId}. Refusing to connect: check the address, or get a fresh link from the host.`,
      );
      return;
    }
    const [sendKey, recvKey] = hs.split();
    this.hash = hs.handshakeHash;
    this.alias = peer.sessionAlias;
    this.sealer = new TransportSealer(sendKey, this.alias);
    this.opener = new TransportOpener(recvKey);
    this.events.push({ type: "handshake", hostId: peer.wavryId, hostName: peer.name, seconds: now - this.hsStarted });
    this.lastRx = now;
    this.helloStarted = now;
    this.pingNext = now + TIMING.pingInterval;
    this.state = "hello";
    this.sendHello(now);
  }

  private sendHello(now: number): void {
    const c = this.config;
    if (!this.hostConfirmed && this.hs?.msg3) this.out.push(this.hs.msg3);
    this.send(
      {
        control: {
          hello: {
            client_name: c.name,
            platform: Platform.WEB,
            supported_codecs: c.codecs,
            max_resolution: { width: c.maxWidth, height: c.maxHeight },
            max_fps: c.maxFps,
            input_caps: 0,
            protocol_version: PROTOCOL_VERSION,
            fec_schemes: c.fecSchemes,
          },
        },
      },
      now,
    );
    this.helloNext = now + TIMING.helloRetry;
  }

  // ---- transport -----------------------------------------------------------------------

  private send(msg: Pb, now: number): number {
    const sealer = this.sealer!;
    const plain = encodeMessage(msg);
    if (plain.length > this.maxPlaintext) {
      throw new Error(`message of ${plain.length} bytes exceeds the ${this.maxPlaintext}-byte budget`);
    }
    const [pid, dgram] = sealer.seal(plain);
    const kind = msg.control ? Object.keys(msg.control)[0] : "";
    if (!NOT_RESENT.has(kind)) {
      this.history.set(pid, [dgram, now]);
      if (this.history.size > 4096) this.history.delete(this.history.keys().next().value as number);
    }
    this.counters.sent++;
    this.out.push(dgram);
    return pid;
  }

  private expireHistory(now: number): void {
    for (const [pid, [, at]] of this.history) {
      if (now - at < 1.0) break;
      this.history.delete(pid);
    }
  }

  private open(d: TransportDatagram): Uint8Array | null {
    if (this.opener === null || d.alias !== this.alias) {
      this.counters.framingDrops++;
      return null;
    }
    if (!this.replay.check(d.packetId)) {
      this.counters.replayed++;
      return null;
    }
    const plain = this.opener.open(d.header, d.packetId, d.payload);
    if (plain === null) {
      this.counters.authFailed++;
      return null;
    }
    this.replay.mark(d.packetId);
    this.counters.received++;
    this.counters.bytesReceived += TRANSPORT_HEADER_LEN + d.payload.length;
    return plain;
  }

  private onTransport(d: TransportDatagram, now: number, recovered: boolean, arrival: number = now): void {
    const plain = this.open(d);
    if (plain === null) return;
    if (!this.hostConfirmed) this.hostConfirmed = true;
    if (this.stalled) {
      this.stalled = false;
      this.events.push({ type: "resumed" });
    }
    this.lastRx = now;
    let msg: Pb;
    try {
      msg = decodeMessage(plain);
    } catch (e) {
      if (!(e instanceof ProtoError)) throw e;
      this.counters.malformed++;
      return;
    }
    const pid = d.packetId;
    if (recovered) this.counters.fecRecovered++;
    else {
      this.feedback.onPacket(pid, arrival);
      this.statsAcc.onPacket(pid, arrival);
    }
    const media = msg.media as Pb | undefined;
    let repaired: Array<[number, Uint8Array]> = [];
    if (media?.fec) {
      repaired = this.fec.onParity(media.fec, now, pid);
    } else {
      repaired = this.fec.onDatagram(pid, d.payload, now);
      this.dispatch(msg, now, arrival);
    }
    for (const [rpid, payload] of repaired) {
      const header = encodeTransportHeader(this.alias, rpid);
      // a rebuilt datagram arrived when the one that completed its group did
      this.onTransport({ kind: "transport", alias: this.alias, packetId: rpid, header, payload }, now, true, arrival);
    }
    if (this.state === "closed") return;
    const inOrder = (media !== undefined && media.audio === undefined) || recovered;
    this.sendNacks(this.nack.onPacket(pid, now, inOrder), now);
  }

  private sendNacks(ids: number[], now: number): void {
    if (!ids.length || this.sealer === null) return;
    for (const batch of nackBatches(ids)) {
      this.send({ control: { nack: { packet_ids: batch } } }, now);
      this.counters.nacksSent++;
      this.counters.nackedIds += batch.length;
    }
  }

  private dispatch(msg: Pb, now: number, arrival: number = now): void {
    if (msg.media?.video) {
      const chunk = msg.media.video;
      this.statsAcc.onMediaTimestamp((chunk.timestamp_us ?? 0) / 1e6, arrival);
      this.assembled(this.assembler.push(chunk, now, arrival), now);
      return;
    }
    const ctl = msg.control as Pb | undefined;
    if (ctl !== undefined) {
      if (ctl.nack) {
        for (const id of (ctl.nack.packet_ids ?? []).slice(0, 64)) {
          const h = this.history.get(id);
          if (h !== undefined) {
            this.out.push(h[0]);
            this.counters.resent++;
          }
        }
        return;
      }
      if (ctl.pong) return this.onPong(ctl.pong, now);
      if (ctl.hello_ack) return this.onHelloAck(ctl.hello_ack, now);
      if (ctl.pair_result) return this.onPairResult(ctl.pair_result, now);
      if (ctl.disconnect) {
        this.close("peer_disconnect", ctl.disconnect.message || "the host ended the session");
        return;
      }
    }
    if (this.state === "active") this.events.push({ type: "message", msg });
  }

  private assembled(outs: ReturnType<FrameAssembler["poll"]>, now: number): void {
    for (const o of outs) {
      if ("rfi" in o) {
        if (this.state === "active") this.send({ control: { rfi: { last_valid_frame_id: o.rfi } } }, now);
      } else if (this.state === "active") {
        this.events.push({ type: "frame", frame: o.frame });
      }
    }
  }

  private onPong(pong: Pb, now: number): void {
    const ts: number = pong.timestamp_us ?? 0;
    const sent = this.pings.get(ts);
    if (sent === undefined) return;
    this.pings.delete(ts);
    const s = this.clock.add(sent, now, (pong.host_time_us ?? 0) / 1e6);
    this.statsAcc.rttS = s.rtt;
    this.nack.rtt = s.rtt;
    this.events.push({ type: "pong", rtt: s.rtt, offset: this.clock.offset ?? 0 });
  }

  private onHelloAck(ack: Pb, now: number): void {
    if (this.state !== "hello") return;
    if (ack.accepted) {
      if (ack.session_alias && ack.session_alias !== this.alias) {
        this.close("protocol", "HelloAck carries a different alias");
        return;
      }
      this.ack = ack;
      this.state = "active";
      this.events.push({ type: "accepted", ack });
      this.startPingsLeft = TIMING.startPings;
      this.ping(now);
      return;
    }
    const reason: number = ack.reject_reason ?? 0;
    const message: string = ack.message || `rejected (${reason})`;
    this.events.push({ type: "rejected", reason, message });
    if (reason === RejectReason.PAIRING_REQUIRED) this.state = "pairing";
    else this.close("rejected", message);
  }

  private onPairResult(result: Pb, now: number): void {
    if (this.state !== "pairing") return;
    this.events.push({ type: "paired", ok: !!result.ok, message: result.message ?? "" });
    if (result.ok) {
      this.state = "hello";
      this.helloStarted = now;
      this.sendHello(now);
    }
  }
}
