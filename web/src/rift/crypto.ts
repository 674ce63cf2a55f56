/** Transport encryption (RIFT.md §3): packet-id nonces, the header as AAD, the replay window. */

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { TRANSPORT_HEADER_LEN, encodeTransportHeader } from "./framing.js";
import { nonce } from "./noise.js";

export const MAX_PACKET_ID = 2 ** 53 - 1; // far below the spec's 2^63 limit; never reached

export class TransportSealer {
  nextPacketId = 1;
  constructor(
    private readonly key: Uint8Array,
    private readonly alias: number,
  ) {}

  seal(plaintext: Uint8Array): [number, Uint8Array] {
    const pid = this.nextPacketId++;
    if (pid >= MAX_PACKET_ID) throw new Error("packet id limit reached; re-establish the session");
    const header = encodeTransportHeader(this.alias, pid);
    const ct = chacha20poly1305(this.key, nonce(pid), header).encrypt(plaintext);
    const out = new Uint8Array(TRANSPORT_HEADER_LEN + ct.length);
    out.set(header);
    out.set(ct, TRANSPORT_HEADER_LEN);
    return [pid, out];
  }
}

export class TransportOpener {
  constructor(private readonly key: Uint8Array) {}

  /** Plaintext, or null when the tag does not verify. */
  open(header: Uint8Array, packetId: number, ciphertext: Uint8Array): Uint8Array | null {
    if (ciphertext.length < 16) return null;
    try {
      return chacha20poly1305(this.key, nonce(packetId), header).decrypt(ciphertext);
    } catch {
      return null;
    }
  }
}

/**
 * Highest authenticated id plus a bitmap of the `size` ids below it. `check` runs before
 * decryption and changes nothing; `mark` runs only after the tag verified.
 */
export class ReplayWindow {
  private highest = 0;
  private readonly bits: Uint32Array;

  constructor(readonly size = 4096) {
    if (size < 2048 || size % 32) throw new Error("replay window must cover >= 2048 ids, multiple of 32");
    this.bits = new Uint32Array(size / 32);
  }

  get highestId(): number {
    return this.highest;
  }

  private slot(id: number): [number, number] {
    const pos = id % this.size;
    return [pos >>> 5, 1 << (pos & 31)];
  }

  check(id: number): boolean {
    if (id <= 0) return false;
    if (id > this.highest) return true;
    if (this.highest - id >= this.size) return false;
    const [w, b] = this.slot(id);
    return (this.bits[w] & b) === 0;
  }

  mark(id: number): void {
    if (id > this.highest) {
      const shift = id - this.highest;
      if (shift >= this.size) {
        this.bits.fill(0);
      } else {
        for (let i = this.highest + 1; i < id; i++) {
          const [w, b] = this.slot(i);
          this.bits[w] &= ~b;
        }
      }
      this.highest = id;
    }
    const [w, b] = this.slot(id);
    this.bits[w] |= b;
  }
}
