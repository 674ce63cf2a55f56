/**
 * Receiver reports for the host's DELTA controller (RIFT.md §8): `TransportFeedback` about every
 * 50 ms and `StatsReport` every second. Same rules as src/wavry/rift/feedback.py: a range starts
 * right after the previous one, covers ids up to the highest received, and a late id whose range
 * was already reported is ignored.
 */

import type { Pb } from "./messages.js";

const MAX_COUNT = 4096;
const MAX_BYTES = 1000;
const SINT32_MAX = 2 ** 31 - 1;

function varintLen(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function sintLen(v: number): number {
  return varintLen(v >= 0 ? v * 2 : -v * 2 - 1);
}

export class FeedbackBuilder {
  private arrivals = new Map<number, number>(); // pid → arrival µs
  private nextBase: number | null = null;
  private highest = 0;
  private lastBuild: number | null = null;
  private backlog = false;
  lateIgnored = 0;

  constructor(private readonly intervalS = 0.05) {}

  onPacket(pid: number, arrivalS: number): void {
    if (this.nextBase !== null && pid < this.nextBase) {
      this.lateIgnored++;
      return;
    }
    if (this.arrivals.has(pid) || this.arrivals.size >= 65536) return;
    this.arrivals.set(pid, Math.max(0, Math.round(arrivalS * 1e6)));
    if (pid > this.highest) this.highest = pid;
  }

  nextTimer(): number | null {
    if (!this.arrivals.size) return null;
    if (this.lastBuild === null) return Math.min(...this.arrivals.values()) / 1e6;
    return this.backlog ? this.lastBuild : this.lastBuild + this.intervalS;
  }

  build(now: number): Pb | null {
    if (!this.arrivals.size) return null;
    if (!this.backlog && this.lastBuild !== null && now + 1e-9 < this.lastBuild + this.intervalS) return null;
    let firstRx = Infinity;
    for (const pid of this.arrivals.keys()) if (pid < firstRx) firstRx = pid;
    let base = this.nextBase ?? firstRx;
    if (firstRx - base + 1 > MAX_COUNT) base = firstRx;
    let ref = this.arrivals.get(firstRx)!;
    const limit = Math.min(MAX_COUNT, this.highest - base + 1);
    const deltas: number[] = [];
    let packed = 0;
    let count = 0;
    for (let off = 0; off < limit; off++) {
      const a = this.arrivals.get(base + off);
      let extra = 0;
      let d = 0;
      if (a !== undefined) {
        d = a - ref;
        if (Math.abs(d) > SINT32_MAX) break;
        extra = sintLen(d);
      }
      const bitmapLen = Math.ceil((off + 1) / 8);
      const size =
        1 + varintLen(base) + 1 + varintLen(off + 1) + 1 + varintLen(bitmapLen) + bitmapLen +
        1 + varintLen(ref) + 1 + varintLen(packed + extra) + packed + extra;
      if (size > MAX_BYTES && count > 0) break;
      count = off + 1;
      packed += extra;
      if (a !== undefined) deltas.push(d);
    }
    const bitmap = new Uint8Array(Math.ceil(count / 8));
    for (let off = 0; off < count; off++) {
      if (this.arrivals.delete(base + off)) bitmap[off >> 3] |= 1 << (off & 7);
    }
    if (!deltas.length) ref = 0;
    this.nextBase = base + count;
    this.lastBuild = now;
    this.backlog = this.arrivals.size > 0;
    return {
      base_packet_id: base,
      packet_count: count,
      received_bitmap: bitmap,
      reference_time_us: ref,
      arrival_delta_us: deltas,
    };
  }
}

/** `StatsReport` once per period: RFC 3550 interval loss and interarrival jitter, the RTT. */
export class StatsAccumulator {
  private start: number | null = null;
  private firstId: number | null = null;
  private highest = 0;
  private received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private jitterS = 0;
  private lastMedia: [number, number] | null = null;
  rttS: number | null = null;

  constructor(private readonly periodS = 1.0) {}

  onPacket(pid: number, arrival: number): void {
    if (this.start === null) this.start = arrival;
    if (this.firstId === null || pid < this.firstId) this.firstId = pid;
    if (pid > this.highest) this.highest = pid;
    this.received++;
  }

  onMediaTimestamp(senderS: number, arrival: number): void {
    const last = this.lastMedia;
    if (last !== null && senderS === last[0]) return;
    this.lastMedia = [senderS, arrival];
    if (last === null) return;
    const d = arrival - last[1] - (senderS - last[0]);
    this.jitterS += (Math.abs(d) - this.jitterS) / 16;
  }

  nextTimer(): number | null {
    return this.start === null ? null : this.start + this.periodS;
  }

  /** The report and this period's (received, lost) counts, or null when not due. */
  build(now: number): Pb | null {
    if (this.start === null) {
      this.start = now;
      return null;
    }
    const elapsed = now - this.start;
    if (elapsed + 1e-9 < this.periodS) return null;
    const expected = this.firstId === null ? 0 : this.highest - this.firstId + 1;
    const expInt = expected - this.expectedPrior;
    const recInt = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    this.start = now;
    return {
      period_ms: Math.round(elapsed * 1000),
      received_packets: recInt,
      lost_packets: Math.max(0, expInt - recInt),
      rtt_us: this.rttS === null ? 0 : Math.max(0, Math.round(this.rttS * 1e6)),
      jitter_us: Math.round(this.jitterS * 1e6),
    };
  }
}
