import assert from "node:assert/strict";
import { test } from "node:test";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { fromHex, toHex } from "../src/rift/bytes.js";
import { NoiseXX, PROTOCOL_NAME, keyPair, nonce } from "../src/rift/noise.js";
import { vector } from "./vectors.js";

interface Vec {
  protocol_name: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: Array<{ payload: string; ciphertext: string }>;
}

const all = vector<{ vectors: Vec[] }>("noise/noise_xx_25519_chachapoly_blake2s.json").vectors;
const cases = all.filter((v) => v.protocol_name === PROTOCOL_NAME);

test("the Noise vector file has the XX 25519 ChaChaPoly BLAKE2s case", () => {
  assert.ok(cases.length >= 1);
});

for (const [i, v] of cases.entries()) {
  test(`Noise_XX_25519_ChaChaPoly_BLAKE2s vector ${i}`, () => {
    const init = new NoiseXX(true, keyPair(fromHex(v.init_static)), fromHex(v.init_prologue), keyPair(fromHex(v.init_ephemeral)));
    const resp = new NoiseXX(false, keyPair(fromHex(v.resp_static)), fromHex(v.resp_prologue), keyPair(fromHex(v.resp_ephemeral)));
    const msgs = v.messages;
    // handshake: messages 0..2 alternate initiator, responder, initiator
    for (let n = 0; n < 3; n++) {
      const [w, r] = n % 2 === 0 ? [init, resp] : [resp, init];
      const ct = w.writeMessage(fromHex(msgs[n].payload));
      assert.equal(toHex(ct), msgs[n].ciphertext, `handshake message ${n}`);
      assert.equal(toHex(r.readMessage(ct)), msgs[n].payload);
    }
    assert.equal(toHex(init.handshakeHash), v.handshake_hash);
    assert.equal(toHex(resp.handshakeHash), v.handshake_hash);
    assert.deepEqual(toHex(init.remoteStatic!), toHex(keyPair(fromHex(v.resp_static)).publicKey));
    // transport: Split() keys with Noise's implicit nonces (the vector's convention)
    const [i2r, r2i] = init.split();
    const counters = [0, 0];
    for (let n = 3; n < msgs.length; n++) {
      const fromInit = n % 2 === 0;
      const key = fromInit ? i2r : r2i;
      const c = counters[fromInit ? 0 : 1]++;
      const ct = chacha20poly1305(key, nonce(c), new Uint8Array(0)).encrypt(fromHex(msgs[n].payload));
      assert.equal(toHex(ct), msgs[n].ciphertext, `transport message ${n}`);
    }
  });
}
