/**
 * Video frame reassembly (RIFT.md §6), the policy of src/wavry/rift/assembler.py: frames leave
 * complete and in increasing id order, a non-keyframe only right after its predecessor, a
 * keyframe at any time; a frame that cannot complete in time is given up, and a broken chain
 * asks the host for a keyframe (`ReferenceInvalidation`).
 */

import type { Pb } from "./messages.js";

export interface AssembledFrame {
  frameId: number;
  data: Uint8Array;
  keyframe: boolean;
  timestampUs: number;
  captureUs: number;
  encodeUs: number;
  chunkCount: number;
  firstChunkAt: number;
  lastChunkAt: number;
}

export type AssemblerOutput = { frame: AssembledFrame } | { rfi: number };

interface Pending {
  frameId: number;
  count: number;
  keyframe: boolean;
  timestampUs: number;
  captureUs: number;
  encodeUs: number;
  firstChunkAt: number;
  lastChunkAt: number;
  chunks: Array<Uint8Array | undefined>;
  received: number;
  size: number;
}

export interface AssemblerStats {
  completed: number;
  droppedLate: number;
  droppedUndecodable: number;
  neverSeen: number;
  referenceInvalidations: number;
}

const MAX_CHUNKS = 65536;

export class FrameAssembler {
  private pending = new Map<number, Pending>();
  private dead = new Set<number>();
  private lastEmitted: number | null = null;
  private decodable = false;
  private lastRfiAt: number | null = null;
  private dropsSinceRfi = 0;
  private out: AssemblerOutput[] = [];
  readonly stats: AssemblerStats = {
    completed: 0,
    droppedLate: 0,
    droppedUndecodable: 0,
    neverSeen: 0,
    referenceInvalidations: 0,
  };

  constructor(
    private readonly completionDeadline = 0.08,
    private readonly progressGrace = 0.04,
    private readonly maxFrameTime = 1.0,
    private readonly rfiRetry = 0.25,
    private readonly maxPending = 64,
    private readonly maxFrameBytes = 32 * 1024 * 1024,
  ) {}

  get lastEmittedFrameId(): number | null {
    return this.lastEmitted;
  }

  /** One chunk at `now`; `arrival` (default `now`) is when its datagram reached the page: the
   * frame's first/last chunk times (its network figure) use it, deadlines use `now`. */
  push(chunk: Pb, now: number, arrival: number = now): AssemblerOutput[] {
    this.accept(chunk, arrival);
    return this.drain(now);
  }

  poll(now: number): AssemblerOutput[] {
    return this.drain(now);
  }

  nextTimer(): number | null {
    const times: Array<number | null> = [];
    if (this.decodable) times.push(this.nextFrameDeadline());
    else for (const f of this.pending.values()) times.push(this.deadline(f));
    times.push(this.rfiRetryDue());
    const due = times.filter((t): t is number => t !== null);
    return due.length ? Math.min(...due) : null;
  }

  private accept(c: Pb, now: number): void {
    const id: number = c.frame_id ?? 0;
    if ((this.lastEmitted !== null && id <= this.lastEmitted) || this.dead.has(id)) return;
    const count: number = c.chunk_count ?? 0;
    const index: number = c.chunk_index ?? 0;
    if (count < 1 || count > MAX_CHUNKS || index >= count) return;
    let f = this.pending.get(id);
    if (f === undefined) {
      f = {
        frameId: id,
        count,
        keyframe: !!c.keyframe,
        timestampUs: c.timestamp_us ?? 0,
        captureUs: c.capture_us ?? 0,
        encodeUs: c.encode_us ?? 0,
        firstChunkAt: now,
        lastChunkAt: now,
        chunks: new Array(count),
        received: 0,
        size: 0,
      };
      this.pending.set(id, f);
      while (this.pending.size > this.maxPending) this.giveUp(Math.min(...this.pending.keys()), now);
      if (!this.pending.has(id)) return;
    } else if (f.count !== count || f.keyframe !== !!c.keyframe || f.timestampUs !== (c.timestamp_us ?? 0)) {
      return;
    }
    if (f.chunks[index] !== undefined) return;
    const payload: Uint8Array = c.payload ?? new Uint8Array(0);
    f.chunks[index] = payload;
    f.received++;
    f.size += payload.length;
    f.lastChunkAt = now;
    if (f.size > this.maxFrameBytes) this.giveUp(id, now);
  }

  private drain(now: number): AssemblerOutput[] {
    while (this.step(now));
    const due = this.rfiRetryDue();
    if (due !== null && now >= due) this.requestRfi(now);
    const out = this.out;
    this.out = [];
    return out;
  }

  private step(now: number): boolean {
    let key: Pending | null = null;
    for (const f of this.pending.values()) {
      if (f.keyframe && f.received === f.count && (key === null || f.frameId > key.frameId)) key = f;
    }
    if (key !== null) {
      this.emit(key);
      return true;
    }
    return this.decodable ? this.stepDecodable(now) : this.stepAwaiting(now);
  }

  private nextFrameDeadline(): number | null {
    const next = this.pending.get((this.lastEmitted ?? 0) + 1);
    if (next !== undefined) return this.deadline(next);
    if (!this.pending.size) return null;
    let first = Infinity;
    for (const f of this.pending.values()) first = Math.min(first, f.firstChunkAt);
    return first + this.completionDeadline;
  }

  private deadline(f: Pending): number {
    const base = f.firstChunkAt + this.completionDeadline;
    return Math.min(f.firstChunkAt + this.maxFrameTime, Math.max(base, f.lastChunkAt + this.progressGrace));
  }

  private stepDecodable(now: number): boolean {
    const nextId = (this.lastEmitted ?? 0) + 1;
    const f = this.pending.get(nextId);
    if (f !== undefined && f.received === f.count) {
      this.emit(f);
      return true;
    }
    if (!this.dead.has(nextId)) {
      const deadline = this.nextFrameDeadline();
      if (deadline === null || now < deadline) return false;
      if (f === undefined) {
        this.stats.neverSeen++;
        this.markDead(nextId);
      } else {
        this.giveUp(nextId, now);
      }
    }
    this.decodable = false;
    this.requestRfi(now);
    return true;
  }

  private stepAwaiting(now: number): boolean {
    let newestKey: number | null = null;
    for (const f of this.pending.values()) if (f.keyframe) newestKey = Math.max(newestKey ?? 0, f.frameId);
    const sorted = [...this.pending.values()].sort((a, b) => a.frameId - b.frameId);
    for (const f of sorted) {
      const tooOld = newestKey !== null && f.frameId < newestKey;
      if ((tooOld && !f.keyframe) || now >= this.deadline(f)) {
        this.giveUp(f.frameId, now);
        return true;
      }
    }
    return false;
  }

  private emit(f: Pending): void {
    if (f.keyframe) {
      this.decodable = true;
      for (const id of [...this.pending.keys()]) {
        if (id < f.frameId) {
          this.pending.delete(id);
          this.markDead(id);
        }
      }
    }
    this.pending.delete(f.frameId);
    this.lastEmitted = f.frameId;
    for (const id of this.dead) if (id <= f.frameId) this.dead.delete(id);
    this.stats.completed++;
    const data = new Uint8Array(f.size);
    let o = 0;
    for (const c of f.chunks) {
      data.set(c!, o);
      o += c!.length;
    }
    this.out.push({
      frame: {
        frameId: f.frameId,
        data,
        keyframe: f.keyframe,
        timestampUs: f.timestampUs,
        captureUs: f.captureUs,
        encodeUs: f.encodeUs,
        chunkCount: f.count,
        firstChunkAt: f.firstChunkAt,
        lastChunkAt: f.lastChunkAt,
      },
    });
  }

  private giveUp(id: number, now: number): void {
    const f = this.pending.get(id)!;
    this.pending.delete(id);
    this.markDead(id);
    if (this.decodable) {
      this.stats.droppedLate++;
      return;
    }
    if (f.keyframe) this.stats.droppedLate++;
    else this.stats.droppedUndecodable++;
    this.dropsSinceRfi++;
    if (this.lastRfiAt === null && ![...this.pending.values()].some((p) => p.keyframe)) this.requestRfi(now);
  }

  private markDead(id: number): void {
    this.dead.add(id);
    if (this.dead.size > 4 * this.maxPending) this.dead.delete(this.dead.values().next().value as number);
  }

  private requestRfi(now: number): void {
    this.lastRfiAt = now;
    this.dropsSinceRfi = 0;
    this.stats.referenceInvalidations++;
    this.out.push({ rfi: this.lastEmitted ?? 0 });
  }

  private rfiRetryDue(): number | null {
    if (
      !this.decodable &&
      this.lastRfiAt !== null &&
      this.dropsSinceRfi > 0 &&
      ![...this.pending.values()].some((p) => p.keyframe)
    ) {
      return this.lastRfiAt + this.rfiRetry;
    }
    return null;
  }
}
