/**
 * The page's network thread: the carrier (WebTransport or WebSocket) and the RIFT session live in
 * a dedicated worker, so a datagram is read, timestamped and answered (NACK, feedback, Pong
 * timing) while the main thread decodes and draws. Arrival times in TransportFeedback then show
 * the network, not the page's drawing: a browser offers no kernel receive timestamps, and a main
 * thread busy with a frame made the host's DELTA see queues that were not on the path.
 */

import { Identity } from "../rift/identity.js";
import { type CloseKind, ClientSession, DEFAULT_CONFIG } from "../rift/session.js";
import { type Carrier, type CarrierHandlers, openWebSocket, openWebTransport } from "./carrier.js";
import type { FromWorker, NetSnapshot, StartRequest, ToWorker } from "./net-protocol.js";

const now = (): number => (performance.timeOrigin + performance.now()) / 1000;
const random = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
const RECONNECT_MAX_S = 8;
const FINAL: CloseKind[] = ["identity_mismatch", "rejected", "user", "protocol"];
const SNAPSHOT_MS = 200;

const post = (m: FromWorker, transfer: Transferable[] = []): void =>
  (self as unknown as Worker).postMessage(m, transfer);

class NetCore {
  private session: ClientSession | null = null;
  private carrier: Carrier | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;
  private transport = "";
  private reconnects = 0;
  private stopped = false;

  constructor(
    private readonly req: StartRequest,
    private readonly identity: Identity,
  ) {
    setInterval(() => post({ t: "snapshot", snap: this.snapshot() }), SNAPSHOT_MS);
    this.kick.port1.onmessage = () => this.processInbox();
  }

  private kinds(): Array<"webtransport" | "websocket"> {
    const t = this.req.transport;
    if (t === "websocket") return ["websocket"];
    if (t === "webtransport") return ["webtransport"];
    return typeof WebTransport === "undefined" ? ["websocket"] : ["webtransport", "websocket"];
  }

  async connect(): Promise<void> {
    const problems: string[] = [];
    for (const kind of this.kinds()) {
      for (const authority of this.req.authorities) {
        if (this.stopped) return;
        // a WebSocket needs a certificate the browser trusts: the one of the page's own origin
        if (kind === "websocket" && authority !== this.req.pageHost && this.req.transport !== "websocket") continue;
        post({ t: "state", state: `connecting (${kind} to ${authority})` });
        let carrier: Carrier | null = null;
        const handlers: CarrierHandlers = {
          onDatagram: (d) => this.onDatagram(d),
          onClose: (reason) => this.onCarrierClosed(carrier, reason),
        };
        try {
          carrier =
            kind === "webtransport"
              ? await openWebTransport(authority, this.req.certHashes, handlers)
              : await openWebSocket(authority, handlers);
        } catch (e) {
          problems.push(`${kind} ${authority}: ${e instanceof Error ? e.message : String(e)}`);
          continue;
        }
        this.carrier = carrier;
        this.transport = kind;
        post({ t: "state", state: `handshake (${kind})`, transport: kind });
        this.startSession(carrier);
        return;
      }
    }
    this.scheduleReconnect(`cannot reach the host (${problems.join("; ")})`);
  }

  private startSession(carrier: Carrier): void {
    const r = this.req;
    const config = {
      ...DEFAULT_CONFIG,
      name: r.name,
      codecs: r.codecs,
      maxDatagram: carrier.maxDatagram,
      maxWidth: r.maxWidth,
      maxHeight: r.maxHeight,
    };
    this.session = new ClientSession(this.identity, config, r.hostId, random);
    this.session.connect(now());
    this.pump();
  }

  // Datagrams are stamped when the carrier reads them and processed in one task per batch:
  // processing one (decrypt, FEC, assembly) takes long enough in JS that a frame's last datagram,
  // stamped only after the others were processed, looked ~1 ms queued to the host's DELTA, which
  // then kept pacing every frame over several ms instead of sending it at once (clean path).
  // Datagrams the browser has already delivered are read (microtasks) before the batch runs.
  private inbox: Array<[Uint8Array, number]> = [];
  private batchQueued = false;
  private readonly kick = new MessageChannel();

  private onDatagram(d: Uint8Array): void {
    if (this.session === null) return;
    this.inbox.push([d, now()]);
    if (!this.batchQueued) {
      this.batchQueued = true;
      this.kick.port2.postMessage(0);
    }
  }

  private processInbox(): void {
    this.batchQueued = false;
    const batch = this.inbox;
    this.inbox = [];
    const s = this.session;
    if (s === null) return;
    for (const [d, arrival] of batch) {
      try {
        s.receiveDatagram(d, now(), arrival);
      } catch (e) {
        // a bug, never a peer's input (malformed input is counted and dropped): say it once,
        // keep the session
        if (!this.failed) post({ t: "state", state: "streaming", error: `internal error: ${String(e)}` });
        this.failed = true;
      }
      if (this.session !== s) return; // closed or replaced meanwhile: the rest is stale
    }
    this.pump();
  }

  private failed = false;

  pump(): void {
    const s = this.session;
    const c = this.carrier;
    if (s === null || c === null) return;
    for (let i = 0; i < 8; i++) {
      const out = s.takeOutput();
      for (const d of out) c.send(d);
      const events = s.takeEvents();
      if (!events.length && !out.length) break;
      for (const ev of events) {
        if (ev.type === "frame") post({ t: "frame", frame: ev.frame }, [ev.frame.data.buffer as ArrayBuffer]);
        else {
          post({ t: "event", ev });
          if (ev.type === "accepted") this.reconnects = 0;
          if (ev.type === "closed") this.onClosed(ev.kind, ev.message);
        }
      }
      if (this.session !== s) return;
    }
    this.arm();
  }

  private arm(): void {
    const t = this.session?.nextTimer() ?? null;
    if (t === null) return;
    if (this.timer !== null && t >= this.timerAt - 0.0005) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = t;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.session?.handleTimer(now());
        this.pump();
      },
      Math.max(0, (t - now()) * 1000),
    );
  }

  send(msg: Record<string, unknown>): void {
    const s = this.session;
    if (s === null || s.state !== "active") return;
    try {
      s.sendMessage(msg, now());
    } catch (e) {
      post({ t: "state", state: "streaming", error: String(e) });
      return;
    }
    this.pump();
  }

  pair(code: string): void {
    try {
      this.session?.pair(code, now());
    } catch (e) {
      post({ t: "pair-error", message: e instanceof Error ? e.message : String(e) });
      return;
    }
    this.pump();
  }

  quit(message: string): void {
    this.stopped = true;
    this.session?.close("user", message, now());
    this.pump();
    this.end();
  }

  private onClosed(kind: CloseKind, message: string): void {
    this.end();
    // the page's last snapshot must not show the closed session as still alive
    post({ t: "snapshot", snap: this.snapshot() });
    if (FINAL.includes(kind)) {
      this.stopped = true;
      post({ t: "ended", kind, message });
      return;
    }
    this.scheduleReconnect(message);
  }

  private onCarrierClosed(carrier: Carrier | null, reason: string): void {
    if (carrier !== this.carrier || this.stopped) return;
    this.end();
    this.scheduleReconnect(reason);
  }

  private end(): void {
    this.carrier?.close();
    this.carrier = null;
    this.session = null;
    this.inbox = []; // read for the session that ended: never for the next one
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private scheduleReconnect(why: string): void {
    if (this.stopped) return;
    this.reconnects++;
    const delay = Math.min(RECONNECT_MAX_S, 0.25 * 2 ** Math.min(this.reconnects, 6));
    post({ t: "state", state: `reconnecting in ${delay.toFixed(1)} s: ${why}`, error: why });
    setTimeout(() => void this.connect(), delay * 1000);
  }

  snapshot(): NetSnapshot {
    const s = this.session;
    return {
      counters: s
        ? { ...s.counters }
        : {
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
          },
      highestId: s?.highestReceivedId ?? 0,
      srttS: s?.clock.srtt ?? null,
      offsetS: s?.clockOffset ?? null,
      maxPlaintext: s?.maxPlaintext ?? 0,
      carrierDropped: this.carrier?.dropped ?? 0,
      assembler: s ? { ...s.assembler.stats } : null,
      sessionState: s?.state ?? "none",
      hostId: s?.hostId ?? null,
      hostName: s?.hostName ?? "",
      ack: s?.ack ?? null,
      transport: this.transport,
      reconnects: this.reconnects,
    };
  }
}

let core: NetCore | null = null;

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.t === "start") {
    if (core !== null) return;
    core = new NetCore(m, new Identity(m.secret));
    void core.connect();
  } else if (m.t === "send") core?.send(m.msg);
  else if (m.t === "pair") core?.pair(m.code);
  else if (m.t === "quit") core?.quit(m.message);
};
