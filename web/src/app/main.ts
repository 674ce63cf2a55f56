/**
 * Wavry in a web page: RIFT/1 over WebTransport (or WebSocket), WebCodecs video and audio,
 * input, clipboard, files, and the stats overlay. See docs/browser.md.
 */

import { utf8 } from "../rift/bytes.js";
import { type Pb, encodeMessage } from "../rift/messages.js";
import { type CloseKind, ClientSession, DEFAULT_CONFIG, type SessionEvent } from "../rift/session.js";
import { AudioPipeline } from "./audio.js";
import { type Carrier, type CarrierHandlers, openWebSocket, openWebTransport } from "./carrier.js";
import { ClipboardSync } from "./clipboard.js";
import { CLIPBOARD_FILENAME, FileTransfers } from "./files.js";
import { InputCapture } from "./input.js";
import { GatewayUi } from "./gateway-ui.js";
import { loadIdentity } from "./keystore.js";
import { LinkError, type Target, parseLink } from "./params.js";
import { Stats } from "./stats.js";
import { CODEC_NAMES, VideoPipeline, supportedCodecs } from "./video.js";
import type { Identity } from "../rift/identity.js";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const now = (): number => (performance.timeOrigin + performance.now()) / 1000;
const random = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
const RECONNECT_MAX_S = 8;
const FINAL: CloseKind[] = ["identity_mismatch", "rejected", "user", "protocol"];
const LATENCY_REPORT_EVERY = 30;

class App {
  private target!: Target;
  private identity!: Identity;
  private codecs: number[] = [];
  private session: ClientSession | null = null;
  private carrier: Carrier | null = null;
  private video: VideoPipeline | null = null;
  private readonly audio = new AudioPipeline();
  private input: InputCapture | null = null;
  private files: FileTransfers | null = null;
  private clipboard: ClipboardSync | null = null;
  private readonly stats = new Stats();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;
  private state = "starting";
  private error = "";
  private transport = "";
  private reconnects = 0;
  private stopped = false;
  private presentedSinceReport = 0;
  private readonly canvas = $<HTMLCanvasElement>("screen");

  async start(): Promise<void> {
    (window as unknown as { wavryStats: () => unknown }).wavryStats = () => this.wavryStats();
    (window as unknown as { wavryMarkerSamples: () => number[] }).wavryMarkerSamples = () => this.stats.markerSamples();
    (window as unknown as { wavryResetSamples: () => void }).wavryResetSamples = () => this.stats.resetSamples();
    try {
      this.target = parseLink(location);
    } catch (e) {
      return this.fail(e instanceof LinkError ? e.message : String(e));
    }
    if (!window.isSecureContext) {
      return this.fail("this page needs a secure (https) context: open the https:// link the host printed");
    }
    this.codecs = await supportedCodecs();
    if (!this.codecs.length) return this.fail("this browser has no WebCodecs video decoder (H.264, AV1)");
    const { identity, persistent } = await loadIdentity();
    this.identity = identity;
    $("my-id").textContent = `this browser: ${identity.wavryId}${persistent ? "" : " (temporary: private window)"}`;
    this.setupUi();
    setInterval(() => this.tickStats(), 1000);
    if (this.target.hostId === null && location.pathname.startsWith("/app")) {
      // served by a gateway: sign in and pick a host (CONTROL_PLANE.md §6)
      this.setState("sign in to pick a host");
      new GatewayUi(identity, (r) => {
        this.target = { ...this.target, authorities: r.authorities, certHashes: r.certHashes, hostId: r.hostId };
        if (this.target.transport === "auto") this.target.transport = "webtransport";
        void this.connect();
      }).show();
      return;
    }
    if (this.target.hostId === null && this.target.authorities[0] === location.host) {
      await this.fetchInfo(); // no ID in the link: ask the host that served this page
    }
    await this.connect();
  }

  private async fetchInfo(): Promise<void> {
    try {
      const r = await fetch("/rift-info.json", { cache: "no-store" });
      const info = (await r.json()) as { wavry_id?: string };
      if (typeof info.wavry_id === "string") this.target.hostId = info.wavry_id;
    } catch {
      /* the handshake still proves who the host is; nothing to compare with then */
    }
  }

  // ---- connection --------------------------------------------------------------------------

  private transports(): Array<"webtransport" | "websocket"> {
    const t = this.target.transport;
    if (t === "websocket") return ["websocket"];
    if (t === "webtransport") return ["webtransport"];
    return typeof WebTransport === "undefined" ? ["websocket"] : ["webtransport", "websocket"];
  }

  private async connect(): Promise<void> {
    const problems: string[] = [];
    for (const kind of this.transports()) {
      for (const authority of this.target.authorities) {
        if (this.stopped) return;
        // a WebSocket needs a certificate the browser trusts: the one of the page's own origin
        if (kind === "websocket" && authority !== location.host && this.target.transport !== "websocket") continue;
        this.setState(`connecting (${kind} to ${authority})`);
        const handlers: CarrierHandlers = {
          onDatagram: (d) => this.onDatagram(d),
          onClose: (reason) => this.onCarrierClosed(carrier, reason),
        };
        let carrier: Carrier | null = null;
        try {
          carrier =
            kind === "webtransport"
              ? await openWebTransport(authority, this.target.certHashes, handlers)
              : await openWebSocket(authority, handlers);
        } catch (e) {
          problems.push(`${kind} ${authority}: ${e instanceof Error ? e.message : String(e)}`);
          continue;
        }
        this.carrier = carrier;
        this.transport = kind;
        this.startSession(carrier);
        return;
      }
    }
    this.scheduleReconnect(`cannot reach the host (${problems.join("; ")})`);
  }

  private startSession(carrier: Carrier): void {
    const config = {
      ...DEFAULT_CONFIG,
      name: this.target.name || `browser (${navigator.platform || "web"})`,
      codecs: this.codecs,
      maxDatagram: carrier.maxDatagram,
      maxWidth: Math.max(640, Math.round(screen.width * devicePixelRatio)),
      maxHeight: Math.max(360, Math.round(screen.height * devicePixelRatio)),
    };
    this.session = new ClientSession(this.identity, config, this.target.hostId, random);
    this.session.connect(now());
    this.pump();
  }

  private onDatagram(d: Uint8Array): void {
    const s = this.session;
    if (s === null) return;
    s.receiveDatagram(d, now());
    this.pump();
  }

  private pump(): void {
    const s = this.session;
    const c = this.carrier;
    if (s === null || c === null) return;
    for (let i = 0; i < 8; i++) {
      const out = s.takeOutput();
      for (const d of out) c.send(d);
      const events = s.takeEvents();
      if (!events.length && !out.length) break;
      for (const ev of events) this.onEvent(ev);
    }
    this.arm();
  }

  private arm(): void {
    const t = this.session?.nextTimer() ?? null;
    if (t === null) return;
    if (this.timer !== null && t >= this.timerAt - 0.0005) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = t;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.session?.handleTimer(now());
      this.files?.poll(now());
      this.pump();
    }, Math.max(0, (t - now()) * 1000));
  }

  private onCarrierClosed(carrier: Carrier | null, reason: string): void {
    if (carrier !== this.carrier || this.stopped) return;
    this.endSession();
    this.scheduleReconnect(reason);
  }

  private endSession(): void {
    this.input?.releaseAll();
    this.pump();
    this.carrier?.close();
    this.carrier = null;
    this.session = null;
    if (this.input) this.input.enabled = false;
    this.video?.close();
    this.video = null;
  }

  private scheduleReconnect(why: string): void {
    if (this.stopped) return;
    this.reconnects++;
    const delay = Math.min(RECONNECT_MAX_S, 0.25 * 2 ** Math.min(this.reconnects, 6));
    this.setState(`reconnecting in ${delay.toFixed(1)} s: ${why}`);
    this.error = why;
    setTimeout(() => void this.connect(), delay * 1000);
  }

  // ---- session events --------------------------------------------------------------------

  private onEvent(ev: SessionEvent): void {
    switch (ev.type) {
      case "handshake":
        $("host").textContent = `${ev.hostName || "host"} — ${ev.hostId}`;
        this.setState("handshake done, saying Hello");
        break;
      case "accepted":
        this.onAccepted(ev.ack);
        break;
      case "rejected":
        if (ev.reason === 2) this.askPairing(ev.message);
        else this.setState(`rejected: ${ev.message}`);
        break;
      case "paired":
        $("pair-message").textContent = ev.message;
        if (ev.ok) $("pair").hidden = true;
        break;
      case "closed":
        this.onClosed(ev.kind, ev.message);
        break;
      case "frame":
        this.video?.decode(ev.frame);
        break;
      case "message":
        this.onMessage(ev.msg);
        break;
      case "stalled":
        this.setState(`stalled (${ev.silence.toFixed(1)} s without packets)`);
        break;
      case "resumed":
        this.setState("streaming");
        break;
      case "pong":
        break;
    }
  }

  private onAccepted(ack: Pb): void {
    const s = this.session!;
    this.reconnects = 0;
    this.error = "";
    $("pair").hidden = true;
    this.video?.close();
    this.video = new VideoPipeline(
      this.canvas,
      ack.selected_codec ?? 0,
      {
        onPresented: (p) => {
          this.stats.onPresented(p, this.session?.clockOffset ?? null);
          if (++this.presentedSinceReport >= LATENCY_REPORT_EVERY) this.reportLatency(p);
        },
        onMarker: (id, ts, at) => this.stats.onMarker(id, ts, at, this.session?.clockOffset ?? null),
        onKeyframeNeeded: (last) => this.send({ control: { rfi: { last_valid_frame_id: last } } }),
        onError: (m) => (this.error = m),
      },
      this.target.marker,
      now,
    );
    const res = ack.stream_resolution ?? {};
    this.setState(`streaming ${CODEC_NAMES[ack.selected_codec ?? 0]} ${res.width}x${res.height}@${ack.fps}`);
    const fileChunk = s.maxPlaintext - 32;
    this.files = new FileTransfers((m, _bulk) => this.send(m), fileChunk);
    this.files.onChange = () => this.renderTransfers();
    this.files.onClipboardText = (t) => void this.clipboard?.fromHost(t);
    if (this.input) this.input.enabled = true;
    void this.audio.start().catch((e: unknown) => (this.audio.problem = String(e)));
  }

  private reportLatency(p: { frameId: number; captureUs: number; encodeUs: number; presentedAt: number; timestampUs: number; lastChunkAt: number; decodeStart: number }): void {
    this.presentedSinceReport = 0;
    const off = this.session?.clockOffset;
    if (off === null || off === undefined) return;
    const total = (p.presentedAt + off) * 1e6 - p.timestampUs;
    const sent = p.timestampUs + p.captureUs + p.encodeUs;
    const us = (v: number) => Math.max(0, Math.min(0xffffffff, Math.round(v)));
    this.send({
      control: {
        latency: {
          frame_id: p.frameId,
          capture_us: p.captureUs,
          encode_us: p.encodeUs,
          network_us: us((p.lastChunkAt + off) * 1e6 - sent),
          decode_us: us((p.presentedAt - p.decodeStart) * 1e6),
          render_us: 0,
          total_us: us(total),
        },
      },
    });
  }

  private onClosed(kind: CloseKind, message: string): void {
    this.error = message;
    if (FINAL.includes(kind)) {
      this.stopped = kind !== "rejected" || !message.includes("pairing");
      this.endSession();
      this.setState(kind === "identity_mismatch" ? "refused: wrong host identity" : `ended: ${message}`);
      if (kind === "identity_mismatch") this.showError(message);
      return;
    }
    this.endSession();
    this.scheduleReconnect(message);
  }

  private onMessage(msg: Pb): void {
    const t = now();
    if (this.files?.handle(msg, t)) {
      this.pump();
      return;
    }
    if (msg.media?.audio) {
      this.audio.push(msg.media.audio.timestamp_us ?? 0, msg.media.audio.payload ?? new Uint8Array(0));
      return;
    }
    const c = msg.control;
    if (c?.congestion) this.stats.targetKbps = c.congestion.target_bitrate_kbps ?? null;
    else if (c?.clipboard) void this.clipboard?.fromHost(c.clipboard.text ?? "");
    else if (c?.monitor_list) this.renderMonitors(c.monitor_list.monitors ?? []);
  }

  private send(msg: Pb): void {
    const s = this.session;
    if (s === null || s.state !== "active") return;
    try {
      s.sendMessage(msg, now());
    } catch (e) {
      this.error = String(e);
      return;
    }
    this.pump();
  }

  private sendClipboard(text: string): void {
    const s = this.session;
    if (s === null) return;
    const msg = { control: { clipboard: { text } } };
    if (encodeMessage(msg).length <= s.maxPlaintext) this.send(msg);
    else void this.files?.offer(new File([utf8.encode(text) as BlobPart], CLIPBOARD_FILENAME), now);
  }

  // ---- UI -------------------------------------------------------------------------------------

  private setupUi(): void {
    const c = this.canvas;
    this.input = new InputCapture(c, (ev) => this.send({ input: ev }), (code) => this.hotkey(code));
    this.input.attach();
    this.clipboard = new ClipboardSync((t) => this.sendClipboard(t));
    this.clipboard.attach();
    const gesture = () => this.audio.resume();
    window.addEventListener("pointerdown", gesture);
    window.addEventListener("keydown", gesture);
    $("btn-stats").onclick = () => this.toggleStats();
    $("btn-full").onclick = () => void document.documentElement.requestFullscreen?.();
    $("btn-lock").onclick = () => this.input?.togglePointerLock();
    $("btn-clip").onclick = () => void this.clipboard?.read();
    $("btn-files").onclick = () => $<HTMLInputElement>("file-input").click();
    $<HTMLInputElement>("file-input").onchange = (e) => {
      for (const f of Array.from((e.target as HTMLInputElement).files ?? [])) void this.files?.offer(f, now);
    };
    $("btn-quit").onclick = () => this.quit();
    $<HTMLFormElement>("pair").onsubmit = (e) => {
      e.preventDefault();
      const code = $<HTMLInputElement>("pair-code").value;
      try {
        this.session?.pair(code, now());
        $("pair-message").textContent = "checking…";
        this.pump();
      } catch (err) {
        $("pair-message").textContent = err instanceof Error ? err.message : String(err);
      }
    };
    c.addEventListener("dragover", (e) => e.preventDefault());
    c.addEventListener("drop", (e) => {
      e.preventDefault();
      for (const f of Array.from(e.dataTransfer?.files ?? [])) void this.files?.offer(f, now);
    });
    window.addEventListener("pagehide", () => {
      this.session?.close("user", "the page was closed", now());
      this.pump();
    });
    setInterval(() => this.files?.poll(now()), 10);
  }

  private hotkey(code: string): boolean {
    if (code === "KeyS") this.toggleStats();
    else if (code === "KeyX") void document.documentElement.requestFullscreen?.();
    else if (code === "KeyZ") this.input?.togglePointerLock();
    else if (code === "KeyQ") this.quit();
    else return false;
    return true;
  }

  private quit(): void {
    this.stopped = true;
    this.session?.close("user", "closed by user", now());
    this.pump();
    this.endSession();
    this.setState("disconnected");
  }

  private askPairing(message: string): void {
    this.setState("pairing required");
    $("pair").hidden = false;
    $("pair-message").textContent = message;
    $<HTMLInputElement>("pair-code").focus();
  }

  private toggleStats(): void {
    const o = $("overlay");
    o.hidden = !o.hidden;
  }

  private renderMonitors(monitors: Pb[]): void {
    const sel = $<HTMLSelectElement>("monitor");
    sel.hidden = monitors.length < 2;
    sel.replaceChildren(
      ...monitors.map((m) => {
        const o = document.createElement("option");
        o.value = String(m.id ?? 0);
        o.textContent = `${m.name || "monitor"} ${m.width}x${m.height}`;
        return o;
      }),
    );
    sel.onchange = () => this.send({ control: { select_monitor: { monitor_id: Number(sel.value) } } });
  }

  private renderTransfers(): void {
    const list = $("transfers");
    const views = this.files?.views() ?? [];
    list.replaceChildren(
      ...views.map((v) => {
        const li = document.createElement("li");
        const pct = Math.round(v.progress * 100);
        li.textContent = `${v.direction === "up" ? "↑" : "↓"} ${v.name} ${pct} % ${v.state} ${v.message}`;
        if (v.url) {
          const a = document.createElement("a");
          a.href = v.url;
          a.download = v.name;
          a.textContent = " save";
          li.append(a);
        }
        return li;
      }),
    );
  }

  private setState(s: string): void {
    this.state = s;
    $("status").textContent = s;
  }

  private showError(message: string): void {
    const e = $("error");
    e.textContent = message;
    e.hidden = false;
  }

  private fail(message: string): void {
    this.stopped = true;
    this.error = message;
    this.setState("cannot start");
    this.showError(message);
  }

  private tickStats(): void {
    const s = this.session;
    const t = now();
    if (s !== null) {
      this.stats.tick(t, {
        bytesReceived: s.counters.bytesReceived,
        received: s.counters.received,
        fecRecovered: s.counters.fecRecovered,
        highestId: s.highestReceivedId,
        nacksSent: s.counters.nacksSent,
        rttMs: s.clock.srtt === null ? null : s.clock.srtt * 1000,
        clockOffsetS: s.clockOffset,
      });
    }
    const o = $("overlay");
    if (!o.hidden) {
      const w = this.wavryStats() as Record<string, unknown>;
      const f = (v: unknown, d = 1) => (typeof v === "number" ? v.toFixed(d) : "-");
      o.textContent =
        `${w.transport} ${w.codec} ${w.width}x${w.height}  ${f(w.fps, 0)} fps\n` +
        `end-to-end p50 ${f(w.e2eP50Ms)} ms  p95 ${f(w.e2eP95Ms)} ms` +
        (w.markerP50Ms !== null ? `  (marker p50 ${f(w.markerP50Ms)} ms)` : "") +
        `\nnetwork ${f(w.networkP50Ms)} ms  decode ${f(w.decodeP50Ms)} ms\n` +
        `${f(w.bitrateKbps, 0)} kbit/s (target ${f(w.targetKbps, 0)})  loss ${f(w.lossPct, 2)} %  ` +
        `FEC ${w.fecRecovered} (${f(w.fecRepairsPerS, 1)}/s)  NACK ${w.nacksSent}  RTT ${f(w.rttMs, 1)} ms\n` +
        `audio ${w.audio}`;
    }
  }

  private wavryStats(): Record<string, unknown> {
    const s = this.session;
    const v = this.video;
    const t = now();
    return {
      ...this.stats.summary(t),
      framesDecoded: v?.framesDecoded ?? this.stats.framesPresentedTotal,
      framesPresented: this.stats.framesPresentedTotal,
      framesSkipped: v?.framesSkipped ?? 0,
      decodeErrors: v?.decodeErrors ?? 0,
      transport: this.transport,
      hostId: s?.hostId ?? this.target?.hostId ?? null,
      hostName: s?.hostName ?? "",
      state: this.state,
      sessionState: s?.state ?? "none",
      error: this.error,
      codec: s?.ack ? CODEC_NAMES[s.ack.selected_codec ?? 0] : null,
      width: v?.width ?? 0,
      height: v?.height ?? 0,
      rttMs: s?.clock.srtt === null || s === null ? null : s.clock.srtt * 1000,
      clockOffsetMs: s?.clockOffset == null ? null : s.clockOffset * 1000,
      fecRecovered: s?.counters.fecRecovered ?? 0,
      nacksSent: s?.counters.nacksSent ?? 0,
      datagramsReceived: s?.counters.received ?? 0,
      datagramsSent: s?.counters.sent ?? 0,
      carrierDebug: this.carrier?.debug?.() ?? null,
      assembler: s?.assembler.stats ?? null,
      video: v?.debug() ?? null,
      authFailed: s?.counters.authFailed ?? 0,
      carrierDropped: this.carrier?.dropped ?? 0,
      targetKbps: this.stats.targetKbps,
      markerOutOfOrder: this.stats.markerOutOfOrder,
      inputEvents: this.input?.events ?? 0,
      audio: this.audio.running ? `playing (${this.audio.packets} packets)` : this.audio.problem || "waiting for a click",
      reconnects: this.reconnects,
      myId: this.identity?.wavryId ?? null,
    };
  }
}

void new App().start();
