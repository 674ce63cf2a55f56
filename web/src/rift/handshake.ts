/** RIFT handshake (RIFT.md §2): Noise XX in handshake datagrams with identity proofs. */

import { utf8 } from "./bytes.js";
import { encodeHandshakeHeader } from "./framing.js";
import { Identity, verifyStaticKeySignature, wavryIdFromPublicKey } from "./identity.js";
import { S } from "./messages.js";
import { NoiseError, NoiseXX, type KeyPair, generateKeyPair } from "./noise.js";
import { ProtoError, decode, encode } from "./proto.js";

export const MAX_NAME_BYTES = 64;

export class HandshakeError extends Error {}

export interface PeerIdentity {
  wavryId: string;
  identityKey: Uint8Array;
  name: string;
  sessionAlias: number;
}

function clipName(name: string): string {
  let bytes = utf8.encode(name);
  if (bytes.length <= MAX_NAME_BYTES) return name;
  bytes = bytes.subarray(0, MAX_NAME_BYTES);
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes).replace(/\uFFFD+$/, "");
}

export function handshakePayload(identity: Identity, staticKey: KeyPair, name: string): Uint8Array {
  return encode(S.HandshakePayload, {
    identity_key: identity.publicKey,
    identity_sig: identity.signStaticKey(staticKey.publicKey),
    name: clipName(name),
  });
}

export function verifyPeerPayload(remoteStatic: Uint8Array | null, payload: Uint8Array): PeerIdentity {
  let msg;
  try {
    msg = decode(S.HandshakePayload, payload);
  } catch (e) {
    if (e instanceof ProtoError) throw new HandshakeError("handshake payload is not a HandshakePayload");
    throw e;
  }
  if (remoteStatic === null) throw new HandshakeError("peer static key missing");
  const key: Uint8Array = msg.identity_key ?? new Uint8Array(0);
  const sig: Uint8Array = msg.identity_sig ?? new Uint8Array(0);
  if (key.length !== 32 || !verifyStaticKeySignature(key, sig, remoteStatic)) {
    throw new HandshakeError("peer identity proof does not verify");
  }
  const name: string = msg.name ?? "";
  if (utf8.encode(name).length > MAX_NAME_BYTES) throw new HandshakeError("peer name longer than 64 bytes");
  return {
    wavryId: wavryIdFromPublicKey(key),
    identityKey: key,
    name,
    sessionAlias: msg.session_alias ?? 0,
  };
}

/** msg1's Noise payload: zero padding (kind 0) to a 128-byte datagram (30 + 32 + 66). */
const MSG1_PADDING = 66;

/** Client side: msg1 out, msg2 in (verify the host), msg3 out. */
export class InitiatorHandshake {
  readonly msg1: Uint8Array;
  msg3: Uint8Array | null = null;
  peer: PeerIdentity | null = null;
  private noise: NoiseXX;

  constructor(
    private readonly identity: Identity,
    readonly handshakeId: Uint8Array,
    private readonly name: string,
    private readonly staticKey: KeyPair = generateKeyPair(),
  ) {
    this.noise = new NoiseXX(true, staticKey);
    // padded to 128 bytes (RIFT.md §2 admission): the host may answer the first copy at once
    this.msg1 = concatHeader(handshakeId, 1, this.noise.writeMessage(new Uint8Array(MSG1_PADDING)));
  }

  onMsg2(noiseMessage: Uint8Array): PeerIdentity {
    if (this.msg3 !== null) throw new HandshakeError("duplicate msg2");
    let payload: Uint8Array;
    try {
      payload = this.noise.readMessage(noiseMessage);
    } catch (e) {
      if (e instanceof NoiseError) throw new HandshakeError(`msg2 rejected: ${e.message}`);
      throw e;
    }
    const peer = verifyPeerPayload(this.noise.remoteStatic, payload);
    if (peer.sessionAlias === 0) throw new HandshakeError("host sent no session alias");
    const mine = handshakePayload(this.identity, this.staticKey, this.name);
    this.msg3 = concatHeader(this.handshakeId, 3, this.noise.writeMessage(mine));
    this.peer = peer;
    return peer;
  }

  get handshakeHash(): Uint8Array {
    return this.noise.handshakeHash;
  }

  /** [client→host key, host→client key] */
  split(): [Uint8Array, Uint8Array] {
    return this.noise.split();
  }
}

function concatHeader(handshakeId: Uint8Array, n: number, body: Uint8Array): Uint8Array {
  const header = encodeHandshakeHeader(handshakeId, n);
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body, header.length);
  return out;
}
