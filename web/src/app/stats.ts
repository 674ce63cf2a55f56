/**
 * The page's statistics: the native client's figures (fps, end-to-end p50/p95, bitrate, loss,
 * FEC repairs, RTT) for the overlay, and `window.wavryStats()` for tests and checks.
 *
 * End-to-end latency of a presented frame = when it was drawn (page clock + the Ping/Pong clock
 * offset) − its capture timestamp (host clock), as src/wavry/client/stats.py defines it.
 */

import type { PresentedFrame } from "./video.js";

export function percentile(values: number[], q: number): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const k = (s.length - 1) * q;
  const lo = Math.floor(k);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (k - lo);
}

/** A window of recent samples (time-stamped) for rates and percentiles. */
class Window {
  private items: Array<[number, number]> = [];
  constructor(private readonly seconds: number) {}
  add(t: number, v: number): void {
    this.items.push([t, v]);
    this.trim(t);
  }
  trim(now: number): void {
    let i = 0;
    while (i < this.items.length && this.items[i][0] < now - this.seconds) i++;
    if (i) this.items.splice(0, i);
  }
  values(now: number): number[] {
    this.trim(now);
    return this.items.map(([, v]) => v);
  }
  count(now: number): number {
    this.trim(now);
    return this.items.length;
  }
  sum(now: number): number {
    return this.values(now).reduce((a, b) => a + b, 0);
  }
}

export interface NetCounters {
  bytesReceived: number;
  received: number;
  fecRecovered: number;
  highestId: number;
  nacksSent: number;
  rttMs: number | null;
  clockOffsetS: number | null;
}

export class Stats {
  framesDecoded = 0;
  framesPresentedTotal = 0;
  private e2e = new Window(10);
  private marker = new Window(10);
  private e2eAll: number[] = [];
  private markerAll: number[] = [];
  private decode = new Window(10);
  private network = new Window(10);
  private presented = new Window(1);
  private lastMarkerId = -1;
  markerOutOfOrder = 0;
  private snapshot: { t: number; c: NetCounters } | null = null;
  bitrateKbps = 0;
  lossPct = 0;
  fecPerS = 0;
  targetKbps: number | null = null;

  onPresented(p: PresentedFrame, offsetS: number | null): void {
    this.framesPresentedTotal++;
    this.presented.add(p.presentedAt, 1);
    if (offsetS === null) return;
    const e2e = (p.presentedAt + offsetS) * 1000 - p.timestampUs / 1000;
    const sent = (p.timestampUs + p.captureUs + p.encodeUs) / 1000;
    this.e2e.add(p.presentedAt, e2e);
    this.e2eAll.push(e2e);
    if (this.e2eAll.length > 100000) this.e2eAll.splice(0, 50000);
    this.decode.add(p.presentedAt, (p.presentedAt - p.decodeStart) * 1000);
    this.network.add(p.presentedAt, Math.max(0, (p.lastChunkAt + offsetS) * 1000 - sent));
  }

  /** Glass-to-glass from the synthetic marker (capture timestamp in the pixels). */
  onMarker(frameId: number, timestampUs: number, presentedAt: number, offsetS: number | null): void {
    if (frameId <= this.lastMarkerId) this.markerOutOfOrder++;
    this.lastMarkerId = Math.max(this.lastMarkerId, frameId);
    if (offsetS === null) return;
    const ms = (presentedAt + offsetS) * 1000 - timestampUs / 1000;
    this.marker.add(presentedAt, ms);
    this.markerAll.push(ms);
    if (this.markerAll.length > 100000) this.markerAll.splice(0, 50000);
  }

  /** Once a second: rates from the transport counters. */
  tick(now: number, c: NetCounters): void {
    const prev = this.snapshot;
    this.snapshot = { t: now, c: { ...c } };
    if (prev === null) return;
    const dt = Math.max(1e-3, now - prev.t);
    this.bitrateKbps = ((c.bytesReceived - prev.c.bytesReceived) * 8) / 1000 / dt;
    const expected = c.highestId - prev.c.highestId;
    const got = c.received - c.fecRecovered - (prev.c.received - prev.c.fecRecovered);
    this.lossPct = expected > 0 ? Math.max(0, (100 * (expected - got)) / expected) : 0;
    this.fecPerS = (c.fecRecovered - prev.c.fecRecovered) / dt;
  }

  fps(now: number): number {
    return this.presented.count(now);
  }

  summary(now: number): Record<string, number | null> {
    const e2e = this.e2e.values(now);
    const mk = this.marker.values(now);
    return {
      fps: this.fps(now),
      e2eP50Ms: percentile(e2e, 0.5),
      e2eP95Ms: percentile(e2e, 0.95),
      e2eP50MsSession: percentile(this.e2eAll, 0.5),
      e2eP95MsSession: percentile(this.e2eAll, 0.95),
      markerP50Ms: percentile(mk, 0.5),
      markerP95Ms: percentile(mk, 0.95),
      markerFrames: this.markerAll.length,
      decodeP50Ms: percentile(this.decode.values(now), 0.5),
      networkP50Ms: percentile(this.network.values(now), 0.5),
      bitrateKbps: this.bitrateKbps,
      lossPct: this.lossPct,
      fecRepairsPerS: this.fecPerS,
    };
  }

  /** Every marker latency sample of the session (ms), for benchmarks. */
  markerSamples(): number[] {
    return [...this.markerAll];
  }

  resetSamples(): void {
    this.markerAll = [];
    this.e2eAll = [];
    this.markerOutOfOrder = 0;
  }
}
