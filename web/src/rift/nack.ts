/**
 * Receiver-side NACK (RIFT.md §7.3): gap detection over authenticated packet ids, a short hold
 * for ids FEC is expected to repair, re-requests spaced by the RTT, bounded attempts and age.
 * The same policy as src/wavry/rift/retransmit.py's NackTracker, without its bench-tuned extras.
 */

export const MAX_IDS_PER_NACK = 64;

interface Missing {
  missedAt: number;
  held: boolean;
  requestedAt: number;
  attempts: number;
}

export class NackTracker {
  private highest = 0;
  private missing = new Map<number, Missing>();
  private ahead = new Set<number>();
  private lastArrival = -Infinity;
  private due: number | null = null;
  rtt = 0.05;
  requested = 0;

  constructor(
    private readonly willRepair: ((pid: number) => boolean) | null = null,
    private readonly maxAge = 0.3,
    private readonly maxAttempts = 3,
    private readonly fecHold = 0.005,
    private readonly fecHoldMax = 0.05,
    private readonly maxGap = 1024,
  ) {}

  private interval(): number {
    return Math.max(0.002, this.rtt * 1.25);
  }

  /** Note an authenticated datagram; returns ids to NACK now. `revealsGaps` is false for the
   *  host's priority lane (control, input, audio), which may overtake paced media. */
  onPacket(pid: number, now: number, revealsGaps: boolean): number[] {
    if (revealsGaps) this.lastArrival = now;
    const out: number[] = [];
    if (pid > this.highest + 1 && !revealsGaps) {
      if (this.ahead.size < 4096) this.ahead.add(pid);
      return this.due !== null && now >= this.due ? this.scan(now) : [];
    }
    if (pid > this.highest) {
      const gap = pid - this.highest - 1;
      if (gap > this.maxGap) {
        this.missing.clear();
      } else {
        for (let id = this.highest + 1; id < pid; id++) {
          if (this.ahead.delete(id)) continue;
          const e: Missing = { missedAt: now, held: false, requestedAt: now, attempts: 0 };
          this.missing.set(id, e);
          if (this.willRepair !== null && this.willRepair(id)) {
            e.held = true;
          } else {
            this.request(id, e, now, out);
          }
          this.fold(this.dueAt(e));
        }
      }
      this.highest = pid;
      while (this.ahead.delete(this.highest + 1)) this.highest++;
      for (const a of this.ahead) if (a <= this.highest) this.ahead.delete(a);
    } else {
      this.missing.delete(pid);
    }
    if (this.due !== null && now >= this.due) out.push(...this.scan(now));
    return out;
  }

  poll(now: number): number[] {
    return this.scan(now);
  }

  nextTimer(): number | null {
    return this.due;
  }

  private request(id: number, e: Missing, now: number, out: number[]): void {
    e.held = false;
    e.requestedAt = now;
    e.attempts++;
    this.requested++;
    out.push(id);
  }

  private dueAt(e: Missing): number {
    if (e.held) return Math.min(this.lastArrival + this.fecHold, e.missedAt + this.fecHoldMax);
    return Math.min(e.requestedAt + this.interval(), e.missedAt + this.maxAge);
  }

  private fold(t: number): void {
    this.due = this.due === null ? t : Math.min(this.due, t);
  }

  private scan(now: number): number[] {
    const out: number[] = [];
    let next: number | null = null;
    const idle = now >= this.lastArrival + this.fecHold;
    for (const [id, e] of this.missing) {
      if (now - e.missedAt >= this.maxAge) {
        this.missing.delete(id);
        continue;
      }
      if (e.held) {
        const over = idle || now >= e.missedAt + this.fecHoldMax;
        if (over || this.willRepair === null || !this.willRepair(id)) this.request(id, e, now, out);
      } else if (now >= e.requestedAt + this.interval()) {
        const useful = now + this.rtt <= e.missedAt + this.maxAge;
        if (e.attempts >= this.maxAttempts || !useful) {
          this.missing.delete(id);
          continue;
        }
        if (this.willRepair === null || !this.willRepair(id)) this.request(id, e, now, out);
        else e.requestedAt = now;
      }
      const t = this.dueAt(e);
      next = next === null ? t : Math.min(next, t);
    }
    this.due = next;
    return out;
  }
}

/** Split ids into `Nack` messages of at most 64 ids. */
export function nackBatches(ids: number[]): number[][] {
  const sorted = [...ids].sort((a, b) => a - b);
  const out: number[][] = [];
  for (let i = 0; i < sorted.length; i += MAX_IDS_PER_NACK) out.push(sorted.slice(i, i + MAX_IDS_PER_NACK));
  return out;
}
