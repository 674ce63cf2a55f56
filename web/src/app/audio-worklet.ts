/**
 * AudioWorklet processor: plays decoded PCM with at most ~20 ms buffered (RIFT.md §6: drop the
 * oldest audio when late, never let a backlog build up). Runs in the AudioWorkletGlobalScope.
 */

declare const sampleRate: number;
declare function registerProcessor(name: string, ctor: unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

const CAPACITY = 48000; // 1 s ring per channel

class RiftPlayer extends AudioWorkletProcessor {
  private ring = [new Float32Array(CAPACITY), new Float32Array(CAPACITY)];
  private read = 0;
  private write = 0;
  private maxBuffered = Math.round(0.02 * sampleRate);
  private underruns = 0;
  private dropped = 0;
  private started = false;

  constructor() {
    super();
    this.port.onmessage = (ev: MessageEvent) => {
      const d = ev.data as { planes?: Float32Array[]; maxMs?: number };
      if (d.maxMs !== undefined) this.maxBuffered = Math.round((d.maxMs / 1000) * sampleRate);
      if (d.planes) this.push(d.planes);
    };
  }

  private buffered(): number {
    return (this.write - this.read + CAPACITY) % CAPACITY;
  }

  private push(planes: Float32Array[]): void {
    const n = planes[0].length;
    for (let c = 0; c < 2; c++) {
      const src = planes[Math.min(c, planes.length - 1)];
      const dst = this.ring[c];
      for (let i = 0; i < n; i++) dst[(this.write + i) % CAPACITY] = src[i];
    }
    this.write = (this.write + n) % CAPACITY;
    const over = this.buffered() - this.maxBuffered;
    if (over > 0) {
      // late: drop the oldest samples so what plays next is at most maxBuffered old
      this.read = (this.read + over) % CAPACITY;
      this.dropped += over;
    }
    this.started = true;
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0];
    const n = out[0].length;
    const have = Math.min(n, this.buffered());
    for (let c = 0; c < out.length; c++) {
      const ring = this.ring[Math.min(c, 1)];
      const o = out[c];
      for (let i = 0; i < have; i++) o[i] = ring[(this.read + i) % CAPACITY];
      for (let i = have; i < n; i++) o[i] = 0;
    }
    this.read = (this.read + have) % CAPACITY;
    if (have < n && this.started) this.underruns++;
    if ((this.underruns + this.dropped) % 64 === 1) {
      this.port.postMessage({ underruns: this.underruns, dropped: this.dropped, buffered: this.buffered() });
    }
    return true;
  }
}

registerProcessor("rift-player", RiftPlayer);
