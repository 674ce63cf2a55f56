/**
 * File transfer in the page (RIFT FileHeader / FileStatus / FileChunk, docs/files.md):
 * files dropped on the picture are offered to the host; files (and large clipboard text) the
 * host offers are received in memory, checked (SHA-256) and offered as a download.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { toHex, utf8Decoder } from "../rift/bytes.js";
import { FileStatusCode, type Pb } from "../rift/messages.js";

export const CLIPBOARD_FILENAME = ".wavry-clipboard.txt";
const HEADER_REPEAT_S = 1.0;
const GIVE_UP_S = 30.0;
const STALL_S = 0.5;
const MAX_INCOMING_BYTES = 1 << 30; // kept in memory until saved
const START_KBPS = 2000;
const MAX_KBPS = 100_000;

type Send = (msg: Pb, bulk: boolean) => void;

export interface TransferView {
  id: number;
  name: string;
  size: number;
  direction: "up" | "down";
  state: string;
  progress: number;
  message: string;
  url?: string;
}

interface Outgoing {
  id: number;
  file: File;
  sha: string;
  chunkSize: number;
  total: number;
  next: number;
  highestSent: number;
  state: "offered" | "sending" | "waiting" | "complete" | "failed";
  headerAt: number;
  heardAt: number;
  message: string;
  tokens: number;
  lastTick: number;
  rateKbps: number;
  reading: boolean;
  buffer: Map<number, Uint8Array>;
}

interface Incoming {
  id: number;
  name: string;
  size: number;
  sha: string;
  chunkSize: number;
  total: number;
  data: Uint8Array;
  have: Uint8Array;
  received: number;
  firstMissing: number;
  lastChunkAt: number;
  askedAt: number;
  done: boolean;
  message: string;
  url?: string;
  clipboard: boolean;
}

function status(fileId: number, st: number, message: string): Pb {
  return { control: { file_status: { file_id: fileId, status: st, message } } };
}

async function sha256File(file: File): Promise<string> {
  if (file.size <= 256 * 1024 * 1024 && crypto.subtle) {
    return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer())));
  }
  const h = sha256.create();
  const reader = file.stream().getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    h.update(value);
  }
  return toHex(h.digest());
}

export class FileTransfers {
  private out = new Map<number, Outgoing>();
  private inc = new Map<number, Incoming>();
  onChange: () => void = () => {};
  onClipboardText: (text: string) => void = () => {};

  constructor(
    private readonly send: Send,
    /** largest FileChunk payload that fits one datagram of this carrier */
    private readonly chunkSize: number,
  ) {}

  views(): TransferView[] {
    const v: TransferView[] = [];
    for (const o of this.out.values()) {
      v.push({
        id: o.id,
        name: o.file.name,
        size: o.file.size,
        direction: "up",
        state: o.state,
        progress: o.total ? Math.min(1, o.highestSent / o.total) : 1,
        message: o.message,
      });
    }
    for (const t of this.inc.values()) {
      if (t.clipboard) continue;
      v.push({
        id: t.id,
        name: t.name,
        size: t.size,
        direction: "down",
        state: t.done ? (t.url ? "complete" : "failed") : "receiving",
        progress: t.total ? t.received / t.total : 1,
        message: t.message,
        url: t.url,
      });
    }
    return v;
  }

  async offer(file: File, now: () => number): Promise<void> {
    const id = ((crypto.getRandomValues(new Uint32Array(1))[0] & 0x7fffffff) << 1) | 1; // client role bit
    const sha = await sha256File(file);
    const total = Math.ceil(file.size / this.chunkSize);
    const t = now();
    const o: Outgoing = {
      id: id >>> 0,
      file,
      sha,
      chunkSize: this.chunkSize,
      total,
      next: 0,
      highestSent: 0,
      state: "offered",
      headerAt: t,
      heardAt: t,
      message: "",
      tokens: 0,
      lastTick: t,
      rateKbps: START_KBPS,
      reading: false,
      buffer: new Map(),
    };
    this.out.set(o.id, o);
    this.send(this.header(o), false);
    this.onChange();
  }

  private header(o: Outgoing): Pb {
    return {
      control: {
        file_header: {
          file_id: o.id,
          filename: o.file.name,
          file_size: o.file.size,
          checksum_sha256: o.sha,
          chunk_size: o.chunkSize,
          total_chunks: o.total,
        },
      },
    };
  }

  /** A control or media message from the host; true when it was a file message. */
  handle(msg: Pb, now: number): boolean {
    const c = msg.control;
    if (c?.file_status) {
      const st = c.file_status;
      const o = this.out.get(st.file_id ?? 0);
      if (o !== undefined) this.onStatus(o, st, now);
      else {
        const t = this.inc.get(st.file_id ?? 0);
        if (t !== undefined && st.status === FileStatusCode.ERROR && !t.done) {
          t.done = true;
          t.message = st.message || "cancelled by the host";
          this.onChange();
        }
      }
      return true;
    }
    if (c?.file_header) {
      this.onHeader(c.file_header, now);
      return true;
    }
    if (msg.media?.file_chunk) {
      this.onChunk(msg.media.file_chunk, now);
      return true;
    }
    return false;
  }

  private onStatus(o: Outgoing, st: Pb, now: number): void {
    o.heardAt = now;
    const code = st.status ?? 0;
    if (code === FileStatusCode.IN_PROGRESS) {
      const m = /^next=(\d+)$/.exec(st.message ?? "");
      const next = m ? Number(m[1]) : (st.next_chunk ?? null);
      if (next === null || next > o.total) return;
      if (next < o.next && o.state !== "offered") o.rateKbps = Math.max(500, o.rateKbps * 0.7); // a gap
      o.next = next;
      if (o.state === "offered" || o.state === "waiting") {
        o.state = "sending";
        o.lastTick = now;
      }
    } else if (code === FileStatusCode.COMPLETE) {
      o.state = "complete";
      o.message = st.message ?? "";
    } else if (code === FileStatusCode.ERROR) {
      o.state = "failed";
      o.message = st.message || "refused by the host";
    }
    this.onChange();
  }

  /** Chunks and repeated headers that are due; call every ~10 ms. */
  poll(now: number): void {
    for (const o of this.out.values()) {
      if (o.state === "offered" || o.state === "waiting") {
        if (now - o.heardAt > GIVE_UP_S) {
          o.state = "failed";
          o.message = "the host stopped answering";
          this.onChange();
        } else if (now - o.headerAt >= HEADER_REPEAT_S) {
          o.headerAt = now;
          this.send(this.header(o), false);
        }
        continue;
      }
      if (o.state !== "sending") continue;
      o.tokens = Math.min(o.tokens + (now - o.lastTick) * o.rateKbps * 125, Math.max(o.rateKbps * 125 * 0.02, o.chunkSize));
      o.lastTick = now;
      o.rateKbps = Math.min(MAX_KBPS, o.rateKbps * (1 + 0.5 * 0.01));
      while (o.next < o.total && o.tokens > 0) {
        const chunk = o.buffer.get(o.next);
        if (chunk === undefined) {
          this.readAhead(o);
          break;
        }
        o.buffer.delete(o.next);
        this.send({ media: { file_chunk: { file_id: o.id, chunk_index: o.next, payload: chunk } } }, true);
        o.tokens -= chunk.length;
        o.next++;
        o.highestSent = Math.max(o.highestSent, o.next);
      }
      if (o.next >= o.total) {
        o.state = "waiting";
        o.headerAt = now;
        o.heardAt = now;
        o.buffer.clear();
      }
    }
    for (const t of this.inc.values()) {
      if (!t.done && now - t.lastChunkAt >= STALL_S && now - t.askedAt >= STALL_S) this.ask(t, now);
    }
  }

  private readAhead(o: Outgoing): void {
    if (o.reading) return;
    o.reading = true;
    const start = o.next;
    const count = Math.min(256, o.total - start);
    const from = start * o.chunkSize;
    const to = Math.min(o.file.size, (start + count) * o.chunkSize);
    o.file
      .slice(from, to)
      .arrayBuffer()
      .then((buf) => {
        const bytes = new Uint8Array(buf);
        o.buffer.clear();
        for (let i = 0; i < count; i++) o.buffer.set(start + i, bytes.subarray(i * o.chunkSize, (i + 1) * o.chunkSize));
      })
      .catch((e: unknown) => {
        o.state = "failed";
        o.message = `cannot read the file: ${String(e)}`;
        this.onChange();
      })
      .finally(() => {
        o.reading = false;
      });
  }

  private onHeader(h: Pb, now: number): void {
    const id: number = h.file_id ?? 0;
    const known = this.inc.get(id);
    if (known !== undefined) {
      if (known.done) this.send(status(id, known.url || known.clipboard ? FileStatusCode.COMPLETE : FileStatusCode.ERROR, known.message), false);
      else this.ask(known, now);
      return;
    }
    const size: number = h.file_size ?? 0;
    const total: number = h.total_chunks ?? 0;
    const chunk: number = h.chunk_size ?? 0;
    const name = String(h.filename ?? "").replace(/[\\/\x00-\x1f\x7f]/g, "_").replace(/^[. ]+/, "") || "file";
    const clipboard = h.filename === CLIPBOARD_FILENAME;
    const bad =
      size > MAX_INCOMING_BYTES
        ? "refused: too large for a browser download"
        : chunk <= 0 || total !== Math.ceil(size / chunk)
          ? "refused: inconsistent chunk plan"
          : !/^[0-9a-f]{64}$/.test(h.checksum_sha256 ?? "")
            ? "refused: bad checksum"
            : "";
    if (bad) {
      this.send(status(id, FileStatusCode.ERROR, bad), false);
      return;
    }
    const t: Incoming = {
      id,
      name,
      size,
      sha: h.checksum_sha256,
      chunkSize: chunk,
      total,
      data: new Uint8Array(size),
      have: new Uint8Array(total),
      received: 0,
      firstMissing: 0,
      lastChunkAt: now,
      askedAt: -1e9,
      done: false,
      message: "",
      clipboard,
    };
    this.inc.set(id, t);
    this.ask(t, now);
    if (total === 0) this.verify(t);
    this.onChange();
  }

  private ask(t: Incoming, now: number): void {
    t.askedAt = now;
    this.send(status(t.id, FileStatusCode.IN_PROGRESS, `next=${t.firstMissing}`), false);
  }

  private onChunk(c: Pb, now: number): void {
    const t = this.inc.get(c.file_id ?? 0);
    if (t === undefined || t.done) return;
    const i: number = c.chunk_index ?? 0;
    const payload: Uint8Array = c.payload ?? new Uint8Array(0);
    const expected = i === t.total - 1 ? t.size - i * t.chunkSize : t.chunkSize;
    if (i >= t.total || payload.length !== expected) {
      t.done = true;
      t.message = `chunk ${i} is malformed`;
      this.send(status(t.id, FileStatusCode.ERROR, t.message), false);
      this.onChange();
      return;
    }
    t.lastChunkAt = now;
    if (t.have[i]) {
      if (t.firstMissing > i + 1 && now - t.askedAt >= 0.02) this.ask(t, now);
      return;
    }
    t.data.set(payload, i * t.chunkSize);
    t.have[i] = 1;
    t.received++;
    while (t.firstMissing < t.total && t.have[t.firstMissing]) t.firstMissing++;
    if (t.received === t.total) this.verify(t);
    else if (i === t.total - 1 && now - t.askedAt >= STALL_S) this.ask(t, now);
    if (t.received % 256 === 0) this.onChange();
  }

  private verify(t: Incoming): void {
    t.done = true;
    if (toHex(sha256(t.data)) !== t.sha) {
      t.message = "SHA-256 mismatch: the received file is corrupt";
      this.send(status(t.id, FileStatusCode.ERROR, t.message), false);
    } else if (t.clipboard) {
      t.message = "clipboard updated";
      this.onClipboardText(utf8Decoder.decode(t.data));
      this.send(status(t.id, FileStatusCode.COMPLETE, t.message), false);
    } else {
      t.url = URL.createObjectURL(new Blob([t.data as BlobPart]));
      t.message = `saved as ${t.name} (download)`;
      this.send(status(t.id, FileStatusCode.COMPLETE, `saved as ${t.name}`), false);
    }
    t.data = new Uint8Array(0);
    this.onChange();
  }
}
