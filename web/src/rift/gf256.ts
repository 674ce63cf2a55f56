/**
 * GF(2^8) arithmetic and the systematic Reed–Solomon erasure code of RIFT.md §7.2
 * (polynomial x^8+x^4+x^3+x^2+1 = 0x11d, α = 2, generator G = V · inv(V[0..k-1])).
 * Written here because the page needs only this small decoder and no npm erasure-code package
 * implements this exact (zfec-compatible) construction; checked against
 * tests/vectors/fec/reed_solomon_gf256.json.
 */

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
(() => {
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
})();

/** mul[a] is the 256-entry row "a × b" for every b: the inner loops are table look-ups. */
const MUL: Uint8Array[] = [];
for (let a = 0; a < 256; a++) {
  const row = new Uint8Array(256);
  if (a !== 0) for (let b = 1; b < 256; b++) row[b] = EXP[LOG[a] + LOG[b]];
  MUL.push(row);
}

export function gfMul(a: number, b: number): number {
  return MUL[a][b];
}

export function gfInv(a: number): number {
  if (a === 0) throw new Error("0 has no inverse in GF(2^8)");
  return EXP[255 - LOG[a]];
}

export function gfPow(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return EXP[(LOG[a] * n) % 255];
}

export type Matrix = number[][];

/** Inverse of a square matrix over GF(2^8) (Gauss–Jordan); throws if singular. */
export function invert(m: Matrix): Matrix {
  const n = m.length;
  const a = m.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot][col] === 0) pivot++;
    if (pivot === n) throw new Error("singular matrix");
    [a[col], a[pivot]] = [a[pivot], a[col]];
    const inv = gfInv(a[col][col]);
    const prow = a[col];
    for (let j = 0; j < 2 * n; j++) prow[j] = MUL[inv][prow[j]];
    for (let r = 0; r < n; r++) {
      if (r === col || a[r][col] === 0) continue;
      const f = a[r][col];
      const row = a[r];
      for (let j = 0; j < 2 * n; j++) row[j] ^= MUL[f][prow[j]];
    }
  }
  return a.map((row) => row.slice(n));
}

export function matMul(a: Matrix, b: Matrix): Matrix {
  const out: Matrix = [];
  for (let i = 0; i < a.length; i++) {
    const row = new Array<number>(b[0].length).fill(0);
    for (let k = 0; k < b.length; k++) {
      const f = a[i][k];
      if (f === 0) continue;
      const mrow = MUL[f];
      const brow = b[k];
      for (let j = 0; j < row.length; j++) row[j] ^= mrow[brow[j]];
    }
    out.push(row);
  }
  return out;
}

const generators = new Map<string, Matrix>();

/** The (k+m)×k generator matrix G (top k rows the identity), cached per (k, m). */
export function generator(k: number, m: number): Matrix {
  if (k < 1 || m < 1 || k + m > 255) throw new Error(`bad Reed–Solomon parameters k=${k} m=${m}`);
  const key = `${k},${m}`;
  let g = generators.get(key);
  if (g === undefined) {
    const v: Matrix = [];
    for (let r = 0; r < k + m; r++) {
      if (r === 0) v.push(Array.from({ length: k }, (_, c) => (c === 0 ? 1 : 0)));
      else v.push(Array.from({ length: k }, (_, c) => gfPow(2, (r - 1) * c)));
    }
    g = matMul(v, invert(v.slice(0, k)));
    generators.set(key, g);
  }
  return g;
}

/** out ^= coef × src, byte by byte (src may be shorter than out: zero padding). */
export function addScaled(out: Uint8Array, src: Uint8Array, coef: number): void {
  if (coef === 0) return;
  const n = Math.min(out.length, src.length);
  if (coef === 1) {
    for (let i = 0; i < n; i++) out[i] ^= src[i];
    return;
  }
  const row = MUL[coef];
  for (let i = 0; i < n; i++) out[i] ^= row[src[i]];
}

/** Parity shards j = 0..m-1 of k data shards (zero-padded to the longest). */
export function rsEncode(shards: Uint8Array[], m: number): Uint8Array[] {
  const k = shards.length;
  const len = Math.max(...shards.map((s) => s.length));
  const g = generator(k, m);
  const out: Uint8Array[] = [];
  for (let j = 0; j < m; j++) {
    const p = new Uint8Array(len);
    for (let i = 0; i < k; i++) addScaled(p, shards[i], g[k + j][i]);
    out.push(p);
  }
  return out;
}

/**
 * Rebuild the missing data shards. `present` maps a shard row (0..k-1 data, k+j parity j) to
 * its bytes; it needs at least k entries. Returns the k data shards padded to `len`.
 */
export function rsDecode(k: number, m: number, present: Map<number, Uint8Array>, len: number): Uint8Array[] {
  const g = generator(k, m);
  const rows = [...present.keys()].sort((a, b) => a - b).slice(0, k);
  if (rows.length < k) throw new Error("not enough shards to decode");
  const dec = invert(rows.map((r) => g[r]));
  const out: Uint8Array[] = [];
  for (let i = 0; i < k; i++) {
    if (rows[i] === i && present.has(i)) {
      // a data shard in its own row: the decoding row is the unit vector
      const copy = new Uint8Array(len);
      copy.set(present.get(i)!.subarray(0, len));
      out.push(copy);
      continue;
    }
    const shard = new Uint8Array(len);
    for (let c = 0; c < k; c++) addScaled(shard, present.get(rows[c])!, dec[i][c]);
    out.push(shard);
  }
  return out;
}
