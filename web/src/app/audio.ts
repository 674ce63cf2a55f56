/** Host audio (Opus 48 kHz stereo, RIFT.md §6) decoded with WebCodecs into an AudioWorklet. */

export class AudioPipeline {
  private ctx: AudioContext | null = null;
  private node: AudioWorkletNode | null = null;
  private decoder: AudioDecoder | null = null;
  packets = 0;
  decodeErrors = 0;
  underruns = 0;
  droppedSamples = 0;
  problem = "";
  /** the last second of decoded audio (left channel), for the level readout and checks */
  private recent = new Float32Array(48000);
  private recentAt = 0;
  decodedFrames = 0;

  static supported(): boolean {
    return typeof AudioDecoder !== "undefined" && typeof AudioWorkletNode !== "undefined";
  }

  async start(): Promise<void> {
    if (!AudioPipeline.supported()) {
      this.problem = "this browser has no WebCodecs AudioDecoder or AudioWorklet";
      return;
    }
    const ctx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    await ctx.audioWorklet.addModule(new URL("./audio-worklet.js", import.meta.url));
    const node = new AudioWorkletNode(ctx, "rift-player", { outputChannelCount: [2] });
    node.port.onmessage = (ev: MessageEvent) => {
      const d = ev.data as { underruns: number; dropped: number };
      this.underruns = d.underruns;
      this.droppedSamples = d.dropped;
    };
    node.connect(ctx.destination);
    const decoder = new AudioDecoder({
      output: (data) => this.output(data),
      error: () => {
        this.decodeErrors++;
      },
    });
    decoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 2 });
    this.ctx = ctx;
    this.node = node;
    this.decoder = decoder;
  }

  /** Browsers start audio only after a user gesture: call from a click or key handler. */
  resume(): void {
    if (this.ctx !== null && this.ctx.state === "suspended") void this.ctx.resume();
  }

  get running(): boolean {
    return this.ctx?.state === "running";
  }

  push(timestampUs: number, payload: Uint8Array): void {
    const dec = this.decoder;
    if (dec === null || dec.state !== "configured") return;
    this.packets++;
    if (dec.decodeQueueSize > 4) return; // behind: this packet would play late anyway
    try {
      dec.decode(new EncodedAudioChunk({ type: "key", timestamp: timestampUs, data: payload }));
    } catch {
      this.decodeErrors++;
    }
  }

  private output(data: AudioData): void {
    const node = this.node;
    if (node === null) {
      data.close();
      return;
    }
    const planes: Float32Array[] = [];
    for (let c = 0; c < Math.min(2, data.numberOfChannels); c++) {
      const p = new Float32Array(data.numberOfFrames);
      data.copyTo(p, { planeIndex: c, format: "f32-planar" });
      planes.push(p);
    }
    data.close();
    this.decodedFrames += planes[0].length;
    for (const v of planes[0]) {
      this.recent[this.recentAt] = v;
      this.recentAt = (this.recentAt + 1) % this.recent.length;
    }
    node.port.postMessage({ planes }, planes.map((p) => p.buffer));
  }

  /** The last second of decoded samples, oldest first. */
  recentSamples(): number[] {
    const r = this.recent;
    return [...r.subarray(this.recentAt), ...r.subarray(0, this.recentAt)];
  }

  /** RMS of the last 100 ms (0..1). */
  level(): number {
    const n = 4800;
    let sum = 0;
    for (let i = 1; i <= n; i++) {
      const v = this.recent[(this.recentAt - i + this.recent.length) % this.recent.length];
      sum += v * v;
    }
    return Math.sqrt(sum / n);
  }

  close(): void {
    try {
      this.decoder?.close();
    } catch {
      /* closed */
    }
    void this.ctx?.close();
    this.decoder = null;
    this.node = null;
    this.ctx = null;
  }
}
