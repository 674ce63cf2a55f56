/**
 * FEC receive (RIFT.md §7): rebuild lost encrypted payloads from `FecPacket` parities, for
 * both schemes — interleaved XOR (§7.1) and Reed–Solomon over GF(2^8) (§7.2). The caller puts
 * the rebuilt 18-byte header in front and processes the result like any datagram (AEAD, replay).
 */

import { FecScheme, type Pb } from "./messages.js";
import { rsDecode } from "./gf256.js";

const TAG = 16;
const MAX_XOR_SHARDS = 64;
const MAX_SHARD_LEN = 65507;

interface Group {
  id: number;
  first: number;
  k: number;
  m: number;
  scheme: number;
  lengths: number[];
  len: number;
  parities: Map<number, Uint8Array>;
  resolved: Set<number>; // XOR classes handled / RS: 0 once decoded
  createdAt: number;
}

export interface FecStats {
  paritiesAccepted: number;
  paritiesInvalid: number;
  recovered: number;
  inconsistent: number;
}

export class FecDecoder {
  private shards = new Map<number, [Uint8Array, number]>(); // pid → (payload, stored at)
  private groups = new Map<number, Group>();
  readonly stats: FecStats = { paritiesAccepted: 0, paritiesInvalid: 0, recovered: 0, inconsistent: 0 };
  private lastExpire = -Infinity;

  constructor(
    private readonly maxAge = 1.0,
    private readonly maxShards = 8192,
    private readonly maxGroups = 512,
  ) {}

  /** An authenticated non-FEC datagram (recovered ones too). */
  onDatagram(pid: number, payload: Uint8Array, now: number): Array<[number, Uint8Array]> {
    this.expire(now);
    if (this.shards.has(pid)) return [];
    this.shards.set(pid, [payload.slice(), now]);
    if (this.shards.size > this.maxShards) {
      const oldest = this.shards.keys().next().value as number;
      this.shards.delete(oldest);
    }
    const g = this.groupCovering(pid);
    if (g === undefined) return [];
    return this.tryRecover(g, g.scheme === FecScheme.FEC_REED_SOLOMON ? 0 : (pid - g.first) % g.m);
  }

  /** An authenticated `FecPacket`; `carrier` is the packet id of the datagram carrying it. */
  onParity(fec: Pb, now: number, carrier: number): Array<[number, Uint8Array]> {
    this.expire(now);
    const g = this.validate(fec, carrier);
    if (g === null) {
      this.stats.paritiesInvalid++;
      return [];
    }
    let known = this.groups.get(g.id);
    if (known === undefined) {
      if (this.overlaps(g)) {
        this.stats.paritiesInvalid++;
        return [];
      }
      g.createdAt = now;
      this.groups.set(g.id, g);
      if (this.groups.size > this.maxGroups) this.groups.delete(this.groups.keys().next().value as number);
      known = g;
    } else if (
      known.first !== g.first ||
      known.k !== g.k ||
      known.m !== g.m ||
      known.scheme !== g.scheme ||
      known.lengths.some((n, i) => n !== g.lengths[i])
    ) {
      this.stats.paritiesInvalid++;
      return [];
    }
    const j: number = fec.parity_index ?? 0;
    if (known.parities.has(j)) return [];
    known.parities.set(j, fec.payload as Uint8Array);
    this.stats.paritiesAccepted++;
    return this.tryRecover(known, known.scheme === FecScheme.FEC_REED_SOLOMON ? 0 : j);
  }

  /** Whether FEC can still be expected to rebuild the missing datagram `pid`. */
  willRepair(pid: number): boolean {
    if (this.shards.has(pid)) return false;
    const g = this.groupCovering(pid);
    if (g === undefined) return false;
    if (g.scheme === FecScheme.FEC_REED_SOLOMON) {
      if (g.resolved.size) return false;
      return this.missing(g, 0).length <= g.m;
    }
    const cls = (pid - g.first) % g.m;
    if (g.resolved.has(cls)) return false;
    const miss = this.missing(g, cls);
    return miss.length === 1 && miss[0] === pid;
  }

  private validate(fec: Pb, carrier: number): Group | null {
    const k: number = fec.shard_count ?? 0;
    const m: number = fec.parity_count ?? 0;
    const j: number = fec.parity_index ?? 0;
    const scheme: number = fec.scheme ?? FecScheme.FEC_XOR_INTERLEAVED;
    const lengths: number[] = fec.shard_lengths ?? [];
    const payload: Uint8Array = fec.payload ?? new Uint8Array(0);
    const first: number = fec.first_packet_id ?? 0;
    if (scheme === FecScheme.FEC_REED_SOLOMON) {
      if (k < 1 || m < 1 || k + m > 255) return null;
    } else if (scheme === FecScheme.FEC_XOR_INTERLEAVED) {
      if (k < 1 || k > MAX_XOR_SHARDS || m < 1 || m > k) return null;
    } else {
      return null;
    }
    if (j >= m || lengths.length !== k) return null;
    if (lengths.some((n) => n < TAG || n > MAX_SHARD_LEN)) return null;
    const len = Math.max(...lengths);
    if (payload.length !== len || first < 1 || carrier <= first + k - 1) return null;
    return {
      id: fec.group_id ?? 0,
      first,
      k,
      m,
      scheme,
      lengths,
      len,
      parities: new Map(),
      resolved: new Set(),
      createdAt: 0,
    };
  }

  private missing(g: Group, cls: number): number[] {
    const out: number[] = [];
    if (g.scheme === FecScheme.FEC_REED_SOLOMON) {
      for (let i = 0; i < g.k; i++) if (!this.shards.has(g.first + i)) out.push(g.first + i);
    } else {
      for (let i = cls; i < g.k; i += g.m) if (!this.shards.has(g.first + i)) out.push(g.first + i);
    }
    return out;
  }

  private tryRecover(g: Group, cls: number): Array<[number, Uint8Array]> {
    if (g.resolved.has(cls)) return [];
    const miss = this.missing(g, cls);
    if (g.scheme === FecScheme.FEC_REED_SOLOMON) {
      if (!miss.length) {
        g.resolved.add(0);
        return [];
      }
      if (g.k - miss.length + g.parities.size < g.k) return [];
      return this.recoverRs(g, miss);
    }
    const parity = g.parities.get(cls);
    if (parity === undefined || miss.length > 1) return [];
    g.resolved.add(cls);
    if (!miss.length) return [];
    const lost = miss[0];
    const acc = parity.slice();
    for (let i = cls; i < g.k; i += g.m) {
      const pid = g.first + i;
      if (pid === lost) continue;
      const shard = this.shards.get(pid)![0];
      if (shard.length !== g.lengths[i]) {
        this.stats.inconsistent++;
        return [];
      }
      for (let b = 0; b < shard.length; b++) acc[b] ^= shard[b];
    }
    const n = g.lengths[lost - g.first];
    for (let b = n; b < acc.length; b++) {
      if (acc[b] !== 0) {
        this.stats.inconsistent++;
        return [];
      }
    }
    this.stats.recovered++;
    return [[lost, acc.subarray(0, n)]];
  }

  private recoverRs(g: Group, miss: number[]): Array<[number, Uint8Array]> {
    g.resolved.add(0);
    const present = new Map<number, Uint8Array>();
    for (let i = 0; i < g.k; i++) {
      const s = this.shards.get(g.first + i);
      if (s !== undefined) {
        if (s[0].length !== g.lengths[i]) {
          this.stats.inconsistent++;
          return [];
        }
        present.set(i, s[0]);
      }
    }
    for (const [j, p] of g.parities) present.set(g.k + j, p);
    let data: Uint8Array[];
    try {
      data = rsDecode(g.k, g.m, present, g.len);
    } catch {
      this.stats.inconsistent++;
      return [];
    }
    const out: Array<[number, Uint8Array]> = [];
    for (const pid of miss) {
      const i = pid - g.first;
      const n = g.lengths[i];
      const shard = data[i];
      let clean = true;
      for (let b = n; b < shard.length; b++) if (shard[b] !== 0) clean = false;
      if (!clean) {
        this.stats.inconsistent++;
        continue;
      }
      this.stats.recovered++;
      out.push([pid, shard.subarray(0, n)]);
    }
    return out;
  }

  private groupCovering(pid: number): Group | undefined {
    for (const g of this.groups.values()) if (pid >= g.first && pid < g.first + g.k) return g;
    return undefined;
  }

  private overlaps(g: Group): boolean {
    for (const o of this.groups.values()) {
      if (g.first < o.first + o.k && o.first < g.first + g.k) return true;
    }
    return false;
  }

  private expire(now: number): void {
    if (now - this.lastExpire < 0.01) return;
    this.lastExpire = now;
    const horizon = now - this.maxAge;
    for (const [pid, [, at]] of this.shards) {
      if (at >= horizon) break;
      this.shards.delete(pid);
    }
    for (const [id, g] of this.groups) {
      if (g.createdAt >= horizon) break;
      this.groups.delete(id);
    }
  }
}
