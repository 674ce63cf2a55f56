/**
 * Wavry in a web page: RIFT/1 over WebTransport (or WebSocket), WebCodecs video and audio,
 * input, clipboard, files, and the stats overlay. See docs/browser.md.
 *
 * The carrier and the RIFT session run in a worker (net-worker.ts); this thread decodes, draws,
 * plays, captures input and runs the UI.
 */

import { fromBase64url, utf8 } from "../rift/bytes.js";
import type { Identity } from "../rift/identity.js";
import { type Pb, encodeMessage } from "../rift/messages.js";
import type { SessionEvent } from "../rift/session.js";
import { AudioPipeline } from "./audio.js";
import { ClipboardSync } from "./clipboard.js";
import { CLIPBOARD_FILENAME, FileTransfers } from "./files.js";
import { GatewayUi } from "./gateway-ui.js";
import { InputCapture } from "./input.js";
import { loadIdentity } from "./keystore.js";
import type { FromWorker, NetSnapshot, ToWorker } from "./net-protocol.js";
import { LinkError, type Target, parseLink } from "./params.js";
import { Stats } from "./stats.js";
import { CODEC_NAMES, VideoPipeline, supportedCodecs } from "./video.js";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const now = (): number => (performance.timeOrigin + performance.now()) / 1000;
const LATENCY_REPORT_EVERY = 30;

class App {
  private target!: Target;
  private identity!: Identity;
  private codecs: number[] = [];
  private worker: Worker | null = null;
  private net: NetSnapshot | null = null;
  private offsetS: number | null = null;
  private active = false;
  private video: VideoPipeline | null = null;
  private readonly audio = new AudioPipeline();
  private input: InputCapture | null = null;
  private files: FileTransfers | null = null;
  private clipboard: ClipboardSync | null = null;
  private readonly stats = new Stats();
  private state = "starting";
  private error = "";
  private presentedSinceReport = 0;
  private readonly canvas = $<HTMLCanvasElement>("screen");

  async start(): Promise<void> {
    const w = window as unknown as Record<string, unknown>;
    w.wavryStats = () => this.wavryStats();
    w.wavryMarkerSamples = () => this.stats.markerSamples();
    w.wavryResetSamples = () => this.stats.resetSamples();
    w.wavryAudioSamples = () => this.audio.recentSamples();
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
        this.startNet();
      }).show();
      return;
    }
    if (this.target.hostId === null && this.target.authorities[0] === location.host) {
      await this.fetchInfo(); // no ID in the link: ask the host that served this page
    }
    this.startNet();
  }

  private async fetchInfo(): Promise<void> {
    try {
      const r = await fetch("/rift-info.json", { cache: "no-store" });
      const info = (await r.json()) as { wavry_id?: string; cert_sha256?: string };
      if (typeof info.wavry_id === "string") this.target.hostId = info.wavry_id;
      if (typeof info.cert_sha256 === "string" && !this.target.certHashes.length) {
        this.target.certHashes = [fromBase64url(info.cert_sha256)];
      }
    } catch {
      /* the handshake still proves who the host is; nothing to compare with then */
    }
  }

  // ---- the network worker ------------------------------------------------------------------

  private startNet(): void {
    const worker = new Worker(new URL("./net-worker.js", import.meta.url), { type: "module" });
    worker.onmessage = (ev: MessageEvent<FromWorker>) => this.fromWorker(ev.data);
    worker.onerror = (ev) => this.fail(`the network worker failed: ${ev.message}`);
    this.worker = worker;
    const t = this.target;
    this.toWorker({
      t: "start",
      authorities: t.authorities,
      certHashes: t.certHashes,
      hostId: t.hostId,
      transport: t.transport,
      pageHost: location.host,
      secret: this.identity.secret,
      name: t.name || `browser (${navigator.platform || "web"})`,
      codecs: this.codecs,
      maxWidth: Math.max(640, Math.round(screen.width * devicePixelRatio)),
      maxHeight: Math.max(360, Math.round(screen.height * devicePixelRatio)),
    });
  }

  private toWorker(m: ToWorker): void {
    this.worker?.postMessage(m);
  }

  private fromWorker(m: FromWorker): void {
    switch (m.t) {
      case "frame":
        this.video?.decode(m.frame);
        break;
      case "event":
        this.onEvent(m.ev);
        break;
      case "snapshot":
        this.net = m.snap;
        this.offsetS = m.snap.offsetS ?? this.offsetS;
        break;
      case "state":
        if (m.error !== undefined) this.error = m.error;
        if (m.state.startsWith("reconnecting") || m.state.startsWith("connecting")) this.endStream();
        this.setState(m.state);
        break;
      case "pair-error":
        $("pair-message").textContent = m.message;
        break;
      case "ended":
        this.error = m.message;
        this.endStream();
        if (m.kind === "identity_mismatch") {
          this.setState("refused: wrong host identity");
          this.showError(m.message);
        } else {
          this.setState(`ended: ${m.message}`);
        }
        break;
    }
  }

  private send(msg: Pb): void {
    if (this.active) this.toWorker({ t: "send", msg });
  }

  // ---- session events --------------------------------------------------------------------

  private onEvent(ev: Exclude<SessionEvent, { type: "frame" }>): void {
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
        this.error = ev.message;
        this.endStream();
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
        this.offsetS = ev.offset;
        break;
    }
  }

  private onAccepted(ack: Pb): void {
    this.active = true;
    this.error = "";
    $("pair").hidden = true;
    this.video?.close();
    this.video = new VideoPipeline(
      this.canvas,
      ack.selected_codec ?? 0,
      {
        onPresented: (p) => {
          this.stats.onPresented(p, this.offsetS);
          if (++this.presentedSinceReport >= LATENCY_REPORT_EVERY) this.reportLatency(p);
        },
        onMarker: (id, ts, at) => this.stats.onMarker(id, ts, at, this.offsetS),
        onKeyframeNeeded: (last) => this.send({ control: { rfi: { last_valid_frame_id: last } } }),
        onError: (m) => (this.error = m),
      },
      this.target.marker,
      now,
    );
    const res = ack.stream_resolution ?? {};
    this.setState(`streaming ${CODEC_NAMES[ack.selected_codec ?? 0]} ${res.width}x${res.height}@${ack.fps}`);
    const maxPlaintext = (this.net?.maxPlaintext || 1166) as number;
    this.files = new FileTransfers((m) => this.send(m), maxPlaintext - 32);
    this.maxPlaintext = maxPlaintext;
    this.files.onChange = () => this.renderTransfers();
    this.files.onClipboardText = (t) => void this.clipboard?.fromHost(t);
    if (this.input) this.input.enabled = true;
    void this.audio.start().catch((e: unknown) => (this.audio.problem = String(e)));
  }

  private maxPlaintext = 1166;

  private endStream(): void {
    if (!this.active && this.video === null) return;
    this.input?.releaseAll();
    this.active = false;
    if (this.input) this.input.enabled = false;
    this.video?.close();
    this.video = null;
  }

  private reportLatency(p: { frameId: number; captureUs: number; encodeUs: number; presentedAt: number; timestampUs: number; lastChunkAt: number; decodeStart: number }): void {
    this.presentedSinceReport = 0;
    const off = this.offsetS;
    if (off === null) return;
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
          total_us: us((p.presentedAt + off) * 1e6 - p.timestampUs),
        },
      },
    });
  }

  private onMessage(msg: Pb): void {
    if (this.files?.handle(msg, now())) return;
    if (msg.media?.audio) {
      this.audio.push(msg.media.audio.timestamp_us ?? 0, msg.media.audio.payload ?? new Uint8Array(0));
      return;
    }
    const c = msg.control;
    if (c?.congestion) this.stats.targetKbps = c.congestion.target_bitrate_kbps ?? null;
    else if (c?.clipboard) void this.clipboard?.fromHost(c.clipboard.text ?? "");
    else if (c?.monitor_list) this.renderMonitors(c.monitor_list.monitors ?? []);
  }

  private sendClipboard(text: string): void {
    if (!this.active) return;
    const msg = { control: { clipboard: { text } } };
    if (encodeMessage(msg).length <= this.maxPlaintext) this.send(msg);
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
      const code = $<HTMLInputElement>("pair-code").value.replace(/\s+/g, "");
      if (!/^[0-9]{6}$/.test(code)) {
        $("pair-message").textContent = "a pairing code is 6 digits";
        return;
      }
      $("pair-message").textContent = "checking…";
      this.toWorker({ t: "pair", code });
    };
    c.addEventListener("dragover", (e) => e.preventDefault());
    c.addEventListener("drop", (e) => {
      e.preventDefault();
      for (const f of Array.from(e.dataTransfer?.files ?? [])) void this.files?.offer(f, now);
    });
    window.addEventListener("pagehide", () => this.toWorker({ t: "quit", message: "the page was closed" }));
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
    this.input?.releaseAll();
    this.toWorker({ t: "quit", message: "closed by user" });
    this.endStream();
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
    this.error = message;
    this.setState("cannot start");
    this.showError(message);
  }

  private tickStats(): void {
    const n = this.net;
    const t = now();
    if (n !== null) {
      this.stats.tick(t, {
        bytesReceived: n.counters.bytesReceived,
        received: n.counters.received,
        fecRecovered: n.counters.fecRecovered,
        highestId: n.highestId,
        nacksSent: n.counters.nacksSent,
        rttMs: n.srttS === null ? null : n.srttS * 1000,
        clockOffsetS: n.offsetS,
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
    const n = this.net;
    const v = this.video;
    const t = now();
    return {
      ...this.stats.summary(t),
      framesDecoded: v?.framesDecoded ?? 0,
      framesPresented: this.stats.framesPresentedTotal,
      framesNotDrawn: v?.framesNotDrawn ?? 0,
      framesSkipped: v?.framesSkipped ?? 0,
      decodeErrors: v?.decodeErrors ?? 0,
      transport: n?.transport ?? "",
      hostId: n?.hostId ?? this.target?.hostId ?? null,
      hostName: n?.hostName ?? "",
      state: this.state,
      sessionState: n?.sessionState ?? "none",
      error: this.error,
      codec: n?.ack ? CODEC_NAMES[n.ack.selected_codec ?? 0] : null,
      width: v?.width ?? 0,
      height: v?.height ?? 0,
      rttMs: n?.srttS == null ? null : n.srttS * 1000,
      clockOffsetMs: this.offsetS === null ? null : this.offsetS * 1000,
      fecRecovered: n?.counters.fecRecovered ?? 0,
      nacksSent: n?.counters.nacksSent ?? 0,
      datagramsReceived: n?.counters.received ?? 0,
      datagramsSent: n?.counters.sent ?? 0,
      authFailed: n?.counters.authFailed ?? 0,
      carrierDropped: n?.carrierDropped ?? 0,
      assembler: n?.assembler ?? null,
      video: v?.debug() ?? null,
      targetKbps: this.stats.targetKbps,
      markerOutOfOrder: this.stats.markerOutOfOrder,
      inputEvents: this.input?.events ?? 0,
      audio: this.audio.running ? `playing (${this.audio.packets} packets)` : this.audio.problem || "waiting for a click",
      audioPackets: this.audio.packets,
      audioDecodeErrors: this.audio.decodeErrors,
      audioUnderruns: this.audio.underruns,
      audioDroppedSamples: this.audio.droppedSamples,
      audioLevel: this.audio.level(),
      reconnects: n?.reconnects ?? 0,
      myId: this.identity?.wavryId ?? null,
    };
  }
}

void new App().start();
