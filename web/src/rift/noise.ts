/**
 * Noise_XX_25519_ChaChaPoly_BLAKE2s (the Noise Protocol Framework, rev. 34), initiator and
 * responder, on @noble primitives. Written here because no well-kept npm package implements
 * Noise on @noble (the audited primitives the page must use); the framework itself is ~100
 * lines and is checked against the cacophony vector in tests/vectors/noise/.
 *
 * As in the Python side (src/wavry/rift/noise.py) this exposes what RIFT needs beyond plain
 * Noise: the remote static key, the handshake hash and the Split() keys (RIFT's transport phase
 * uses its own packet-id nonces, RIFT.md §3).
 */

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { concat, utf8 } from "./bytes.js";

export const PROTOCOL_NAME = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
export const RIFT_PROLOGUE = utf8.encode("RIFT/1");
const DHLEN = 32;
const TAGLEN = 16;

export class NoiseError extends Error {}

export function nonce(n: number): Uint8Array {
  // 4 zero bytes, then the 64-bit counter little-endian (the same layout RIFT.md §3 uses)
  const out = new Uint8Array(12);
  let v = n;
  for (let i = 4; i < 12; i++) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

function hash(data: Uint8Array): Uint8Array {
  return blake2s(data);
}

function hkdf(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(blake2s, ck, ikm);
  const out1 = hmac(blake2s, temp, Uint8Array.of(1));
  const out2 = hmac(blake2s, temp, concat(out1, Uint8Array.of(2)));
  return [out1, out2];
}

class SymmetricState {
  h: Uint8Array;
  ck: Uint8Array;
  k: Uint8Array | null = null;
  n = 0;

  constructor() {
    const name = utf8.encode(PROTOCOL_NAME);
    if (name.length <= 32) {
      this.h = new Uint8Array(32);
      this.h.set(name);
    } else {
      this.h = hash(name);
    }
    this.ck = this.h;
  }

  mixHash(data: Uint8Array): void {
    this.h = hash(concat(this.h, data));
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.ck, ikm);
    this.ck = ck;
    this.k = k;
    this.n = 0;
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    if (this.k === null) {
      this.mixHash(plaintext);
      return plaintext;
    }
    const ct = chacha20poly1305(this.k, nonce(this.n++), this.h).encrypt(plaintext);
    this.mixHash(ct);
    return ct;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    if (this.k === null) {
      this.mixHash(ciphertext);
      return ciphertext;
    }
    let pt: Uint8Array;
    try {
      pt = chacha20poly1305(this.k, nonce(this.n), this.h).decrypt(ciphertext);
    } catch {
      throw new NoiseError("handshake message does not authenticate");
    }
    this.n++;
    this.mixHash(ciphertext);
    return pt;
  }

  split(): [Uint8Array, Uint8Array] {
    return hkdf(this.ck, new Uint8Array(0));
  }
}

export interface KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export function keyPair(privateKey: Uint8Array): KeyPair {
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

export function generateKeyPair(): KeyPair {
  return keyPair(x25519.utils.randomSecretKey());
}

function dh(priv: Uint8Array, pub: Uint8Array): Uint8Array {
  try {
    return x25519.getSharedSecret(priv, pub);
  } catch {
    throw new NoiseError("key agreement failed (invalid public key)");
  }
}

/** One side of one XX handshake: -> e; <- e, ee, s, es; -> s, se. */
export class NoiseXX {
  private ss = new SymmetricState();
  private e: KeyPair | null = null;
  private re: Uint8Array | null = null;
  remoteStatic: Uint8Array | null = null;
  private step = 0;

  constructor(
    readonly initiator: boolean,
    private readonly s: KeyPair,
    prologue: Uint8Array = RIFT_PROLOGUE,
    private readonly fixedEphemeral?: KeyPair,
  ) {
    this.ss.mixHash(prologue);
  }

  get finished(): boolean {
    return this.step === 3;
  }

  private ephemeral(): KeyPair {
    return this.fixedEphemeral ?? generateKeyPair();
  }

  writeMessage(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    const ss = this.ss;
    const mine = this.initiator ? this.step === 0 || this.step === 2 : this.step === 1;
    if (!mine || this.finished) throw new NoiseError("not this side's turn to write");
    const parts: Uint8Array[] = [];
    if (this.step === 0) {
      this.e = this.ephemeral();
      ss.mixHash(this.e.publicKey);
      parts.push(this.e.publicKey);
    } else if (this.step === 1) {
      this.e = this.ephemeral();
      ss.mixHash(this.e.publicKey);
      parts.push(this.e.publicKey);
      ss.mixKey(dh(this.e.privateKey, this.re!)); // ee
      parts.push(ss.encryptAndHash(this.s.publicKey)); // s
      ss.mixKey(dh(this.s.privateKey, this.re!)); // es (responder side)
    } else {
      parts.push(ss.encryptAndHash(this.s.publicKey)); // s
      ss.mixKey(dh(this.s.privateKey, this.re!)); // se (initiator side)
    }
    parts.push(ss.encryptAndHash(payload));
    this.step++;
    return concat(...parts);
  }

  readMessage(message: Uint8Array): Uint8Array {
    const ss = this.ss;
    const theirs = this.initiator ? this.step === 1 : this.step === 0 || this.step === 2;
    if (!theirs || this.finished) throw new NoiseError("not the peer's turn to write");
    let rest = message;
    const take = (n: number): Uint8Array => {
      if (rest.length < n) throw new NoiseError("handshake message too short");
      const out = rest.subarray(0, n);
      rest = rest.subarray(n);
      return out;
    };
    if (this.step === 0) {
      this.re = take(DHLEN).slice();
      ss.mixHash(this.re);
    } else if (this.step === 1) {
      this.re = take(DHLEN).slice();
      ss.mixHash(this.re);
      ss.mixKey(dh(this.e!.privateKey, this.re)); // ee
      this.remoteStatic = ss.decryptAndHash(take(DHLEN + TAGLEN)).slice(); // s
      ss.mixKey(dh(this.e!.privateKey, this.remoteStatic)); // es (initiator side)
    } else {
      this.remoteStatic = ss.decryptAndHash(take(DHLEN + TAGLEN)).slice(); // s
      ss.mixKey(dh(this.e!.privateKey, this.remoteStatic)); // se (responder side)
    }
    const payload = ss.decryptAndHash(rest);
    this.step++;
    return payload;
  }

  get handshakeHash(): Uint8Array {
    if (!this.finished) throw new NoiseError("handshake not finished");
    return this.ss.h;
  }

  /** Split(): [initiator→responder key, responder→initiator key]. */
  split(): [Uint8Array, Uint8Array] {
    if (!this.finished) throw new NoiseError("handshake not finished");
    return this.ss.split();
  }
}
