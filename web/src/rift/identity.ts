/** Long-term identity (Ed25519) and the Wavry ID (RIFT.md §2). */

import { ed25519 } from "@noble/curves/ed25519.js";
import { base64url, concat, fromBase64url, utf8 } from "./bytes.js";

export const STATIC_KEY_CONTEXT = utf8.encode("RIFT/1 static key");

export class Identity {
  readonly publicKey: Uint8Array;
  readonly wavryId: string;

  constructor(private readonly secretKey: Uint8Array) {
    this.publicKey = ed25519.getPublicKey(secretKey);
    this.wavryId = wavryIdFromPublicKey(this.publicKey);
  }

  static generate(): Identity {
    return new Identity(ed25519.utils.randomSecretKey());
  }

  get secret(): Uint8Array {
    return this.secretKey;
  }

  sign(data: Uint8Array): Uint8Array {
    return ed25519.sign(data, this.secretKey);
  }

  signStaticKey(noiseStaticPublic: Uint8Array): Uint8Array {
    return this.sign(concat(STATIC_KEY_CONTEXT, noiseStaticPublic));
  }
}

export function wavryIdFromPublicKey(pub: Uint8Array): string {
  if (pub.length !== 32) throw new Error("Ed25519 public key must be 32 bytes");
  return base64url(pub);
}

/** True for a well-formed (canonical, 43-character) Wavry ID. */
export function isWavryId(id: string): boolean {
  if (id.length !== 43) return false;
  try {
    const raw = fromBase64url(id);
    return raw.length === 32 && base64url(raw) === id;
  } catch {
    return false;
  }
}

export function verifyStaticKeySignature(
  identityKey: Uint8Array,
  signature: Uint8Array,
  staticKey: Uint8Array,
): boolean {
  if (identityKey.length !== 32 || signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, concat(STATIC_KEY_CONTEXT, staticKey), identityKey);
  } catch {
    return false;
  }
}
