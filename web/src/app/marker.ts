/**
 * Reads the synthetic source's per-frame marker (src/wavry/media/marker.py) from a decoded
 * VideoFrame: 128 bits (frame id u32, capture timestamp µs u64, CRC-32) as black/white blocks
 * in the top-left corner of the luma plane. Used for the page's glass-to-glass latency.
 */

const BITS = 128;
const BLACK = 16;
const WHITE = 235;

export interface MarkerLayout {
  block: number;
  perRow: number;
  rows: number;
}

export function markerLayout(width: number): MarkerLayout | null {
  if (width < 128) return null;
  const block = width >= 1280 ? 16 : 8;
  const perRow = Math.min(Math.floor(width / block), BITS);
  return { block, perRow, rows: Math.ceil(BITS / perRow) };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Decode the marker from a luma band (`stride` bytes per row, at least the marker's rows). */
export function readMarkerLuma(
  luma: Uint8Array,
  stride: number,
  width: number,
  height: number,
): { frameId: number; timestampUs: number } | null {
  const lay = markerLayout(width);
  if (lay === null || height < lay.block * lay.rows) return null;
  const b = lay.block;
  const q = b >> 2;
  const bytes = new Uint8Array(16);
  for (let bit = 0; bit < BITS; bit++) {
    const row = Math.floor(bit / lay.perRow);
    const col = bit % lay.perRow;
    let sum = 0;
    let n = 0;
    for (let y = row * b + q; y < row * b + b - q; y++) {
      const base = y * stride + col * b;
      for (let x = q; x < b - q; x++) {
        sum += luma[base + x];
        n++;
      }
    }
    if (sum / n > (BLACK + WHITE) / 2) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  }
  const view = new DataView(bytes.buffer);
  if (crc32(bytes.subarray(0, 12)) !== view.getUint32(12)) return null;
  return { frameId: view.getUint32(0), timestampUs: view.getUint32(4) * 0x100000000 + view.getUint32(8) };
}

/** The marker band's luma from a decoded frame (I420/NV12: the Y plane's first rows). */
export async function readMarker(frame: VideoFrame): Promise<{ frameId: number; timestampUs: number } | null> {
  const width = frame.codedWidth;
  const lay = markerLayout(frame.visibleRect?.width ?? width);
  if (lay === null) return null;
  const fmt = frame.format;
  if (fmt !== "I420" && fmt !== "NV12" && fmt !== "I420A") return null;
  const rows = lay.block * lay.rows;
  const rectW = (frame.visibleRect?.width ?? width) & ~1;
  const rect = { x: 0, y: 0, width: rectW, height: rows + (rows & 1) };
  const size = frame.allocationSize({ rect });
  const buf = new Uint8Array(size);
  const layout = await frame.copyTo(buf, { rect });
  return readMarkerLuma(buf.subarray(layout[0].offset), layout[0].stride, rectW, rect.height);
}
