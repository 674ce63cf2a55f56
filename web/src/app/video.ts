/**
 * WebCodecs video: one VideoDecoder, every decoded frame drawn on the canvas as soon as it is
 * decoded. Latency first: a decoder that falls behind (its queue grows) skips ahead to the next
 * keyframe instead of working through a backlog of stale pictures.
 */

import type { AssembledFrame } from "../rift/assembler.js";
import { Codec } from "../rift/messages.js";
import { readMarker } from "./marker.js";

/** When the oldest frame still in the decoder is this old, the page stops feeding it and jumps
 *  to the next keyframe: decoding the backlog would only show stale pictures, later. */
const MAX_DECODE_BACKLOG_S = 0.1;
/** While waiting for a keyframe, ask the host again this often. */
const KEYFRAME_RETRY_S = 0.25;

export interface PresentedFrame {
  frameId: number;
  timestampUs: number;
  captureUs: number;
  encodeUs: number;
  firstChunkAt: number;
  lastChunkAt: number;
  decodeStart: number;
  presentedAt: number;
  size: number;
}

export interface VideoHandlers {
  onPresented(p: PresentedFrame): void;
  onMarker(frameId: number, timestampUs: number, presentedAt: number): void;
  /** the decoder needs a keyframe (error or skipped frames); `lastGood` is the last frame id */
  onKeyframeNeeded(lastGood: number): void;
  onError(message: string): void;
}

interface Pending {
  frameId: number;
  frame: AssembledFrame;
  decodeStart: number;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0").toUpperCase();
}

/** "avc1.PPCCLL" from the first SPS of an Annex-B access unit (null: no SPS). */
export function avcCodecString(au: Uint8Array): string | null {
  for (let i = 0; i + 4 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1 && (au[i + 3] & 0x1f) === 7 && i + 6 < au.length) {
      return `avc1.${hex2(au[i + 4])}${hex2(au[i + 5])}${hex2(au[i + 6])}`;
    }
  }
  return null;
}

export const CODEC_NAMES: Record<number, string> = { [Codec.H264]: "h264", [Codec.AV1]: "av1", [Codec.HEVC]: "hevc" };

/** Codec string to ask the browser whether it can decode a RIFT codec (before any frame). */
export const PROBE_STRINGS: Record<number, string> = {
  [Codec.H264]: "avc1.42E01F",
  [Codec.AV1]: "av01.0.08M.08",
  [Codec.HEVC]: "hev1.1.6.L120.90",
};

/** The RIFT codecs this browser decodes, H.264 first. */
export async function supportedCodecs(): Promise<number[]> {
  if (typeof VideoDecoder === "undefined") return [];
  const out: number[] = [];
  for (const c of [Codec.H264, Codec.AV1, Codec.HEVC]) {
    try {
      const r = await VideoDecoder.isConfigSupported({ codec: PROBE_STRINGS[c], optimizeForLatency: true });
      if (r.supported) out.push(c);
    } catch {
      /* unsupported */
    }
  }
  return out;
}

export class VideoPipeline {
  private decoder: VideoDecoder | null = null;
  private configured = "";
  private pending = new Map<number, Pending>(); // by EncodedVideoChunk timestamp
  private needKeyframe = true;
  private lastSubmitted = 0;
  private keyframeAskedAt = -Infinity;
  private readonly ctx: CanvasRenderingContext2D;
  readMarkers: boolean;
  private markerMisses = 0;
  private markerErrors = "";
  private markerOk = 0;
  private markerBad = 0;
  framesDecoded = 0;
  framesNotDrawn = 0;
  framesSkipped = 0;
  decodeErrors = 0;
  width = 0;
  height = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly codec: number,
    private readonly h: VideoHandlers,
    readMarkers: boolean | null,
    private readonly now: () => number,
  ) {
    const ctx = canvas.getContext("2d", { alpha: false, desynchronized: true });
    if (ctx === null) throw new Error("no 2D canvas");
    this.ctx = ctx;
    // null: try on the first frames, keep reading only if the stream carries a marker
    this.readMarkers = readMarkers ?? true;
    this.markerMisses = readMarkers === null ? 0 : -Infinity;
  }

  private configure(frame: AssembledFrame): boolean {
    let codec = PROBE_STRINGS[this.codec];
    if (this.codec === Codec.H264) codec = avcCodecString(frame.data) ?? codec;
    if (this.decoder !== null && this.configured === codec && this.decoder.state === "configured") return true;
    if (this.decoder === null || this.decoder.state === "closed") {
      this.decoder = new VideoDecoder({
        output: (f) => this.output(f),
        error: (e) => this.failed(e),
      });
    }
    try {
      this.decoder.configure({ codec, optimizeForLatency: true, hardwareAcceleration: "no-preference" });
    } catch (e) {
      this.h.onError(`this browser cannot decode ${CODEC_NAMES[this.codec]} (${codec}): ${String(e)}`);
      return false;
    }
    this.configured = codec;
    return true;
  }

  private askKeyframe(): void {
    const t = this.now();
    if (t - this.keyframeAskedAt < KEYFRAME_RETRY_S) return;
    this.keyframeAskedAt = t;
    this.h.onKeyframeNeeded(this.lastSubmitted);
  }

  private backlogS(): number {
    let oldest = Infinity;
    for (const p of this.pending.values()) oldest = Math.min(oldest, p.decodeStart);
    return oldest === Infinity ? 0 : this.now() - oldest;
  }

  decode(frame: AssembledFrame): void {
    if (this.needKeyframe && !frame.keyframe) {
      this.framesSkipped++;
      if (this.lastSubmitted > 0) this.askKeyframe();
      return;
    }
    if (frame.keyframe && !this.configure(frame)) return;
    const dec = this.decoder;
    if (dec === null || dec.state !== "configured") return;
    if (!frame.keyframe && this.backlogS() > MAX_DECODE_BACKLOG_S) {
      // the decoder is behind: decoding this would only show an old picture later
      this.framesSkipped++;
      this.needKeyframe = true;
      this.askKeyframe();
      return;
    }
    this.needKeyframe = false;
    this.lastSubmitted = frame.frameId;
    // EncodedVideoChunk timestamps only need to be unique: the RIFT frame id
    const ts = frame.frameId;
    this.pending.set(ts, { frameId: frame.frameId, frame, decodeStart: this.now() });
    if (this.pending.size > 64) this.pending.delete(this.pending.keys().next().value as number);
    try {
      dec.decode(new EncodedVideoChunk({ type: frame.keyframe ? "key" : "delta", timestamp: ts, data: frame.data }));
    } catch (e) {
      this.failed(e);
    }
  }

  private output(vf: VideoFrame): void {
    const p = this.pending.get(vf.timestamp);
    this.pending.delete(vf.timestamp);
    this.framesDecoded++;
    if ((this.decoder?.decodeQueueSize ?? 0) > 0 && !this.readMarkers) {
      // a newer picture is already being decoded: drawing this one would only be overdrawn
      // (present only the newest; the marker bench draws every frame it reads)
      this.framesNotDrawn++;
      vf.close();
      return;
    }
    const w = vf.displayWidth;
    const h = vf.displayHeight;
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.width = w;
      this.height = h;
    }
    this.ctx.drawImage(vf, 0, 0, w, h);
    const presentedAt = this.now();
    if (p !== undefined) {
      const f = p.frame;
      this.h.onPresented({
        frameId: f.frameId,
        timestampUs: f.timestampUs,
        captureUs: f.captureUs,
        encodeUs: f.encodeUs,
        firstChunkAt: f.firstChunkAt,
        lastChunkAt: f.lastChunkAt,
        decodeStart: p.decodeStart,
        presentedAt,
        size: f.data.length,
      });
    }
    if (this.readMarkers) {
      readMarker(vf)
        .then((m) => {
          if (m !== null) {
            this.markerOk++;
            this.markerMisses = Math.min(this.markerMisses, 0);
            this.h.onMarker(m.frameId, m.timestampUs, presentedAt);
          } else if ((this.markerBad++, ++this.markerMisses > 30)) {
            this.readMarkers = false; // this stream carries no marker
          }
        })
        .catch((e: unknown) => {
          this.markerErrors = String(e);
          this.readMarkers = false;
        })
        .finally(() => vf.close());
    } else {
      vf.close();
    }
  }

  private failed(e: unknown): void {
    this.decodeErrors++;
    this.needKeyframe = true;
    this.pending.clear();
    this.configured = "";
    try {
      this.decoder?.close();
    } catch {
      /* closed */
    }
    this.decoder = null;
    this.h.onError(`video decoder error: ${String(e)}`);
    this.lastSubmitted = 0; // nothing decodable left: any keyframe will do
    this.keyframeAskedAt = -Infinity;
    this.h.onKeyframeNeeded(0);
  }

  debug(): Record<string, unknown> {
    return {
      queue: this.decoder?.decodeQueueSize ?? null,
      state: this.decoder?.state ?? null,
      needKeyframe: this.needKeyframe,
      markers: this.readMarkers,
      markerMisses: this.markerMisses,
      markerErrors: this.markerErrors,
      markerOk: this.markerOk,
      markerBad: this.markerBad,
    };
  }

  close(): void {
    try {
      this.decoder?.close();
    } catch {
      /* closed */
    }
    this.decoder = null;
  }
}
