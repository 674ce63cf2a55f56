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
    node.port.postMessage({ planes }, planes.map((p) => p.buffer));
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
