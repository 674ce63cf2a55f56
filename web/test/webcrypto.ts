// Node 18 (Debian 12's nodejs) has WebCrypto only as node:crypto's `webcrypto`; browsers and
// Node >= 19 have `globalThis.crypto`, which @noble/* reads when its modules load. Imported
// first by the tests that make keys, so it runs before them.
import { webcrypto } from "node:crypto";

if (!("crypto" in globalThis)) {
  Object.defineProperty(globalThis, "crypto", { value: webcrypto, configurable: true });
}
