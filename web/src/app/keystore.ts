/** The page's identity key (Ed25519) in IndexedDB: one per browser profile and origin. */

import { Identity } from "../rift/identity.js";

const DB = "wavry";
const STORE = "keys";
const KEY = "identity";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function run<T>(db: IDBDatabase, mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = op(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** This browser's identity: loaded, or created and stored on first use. Without IndexedDB
 *  (private windows of some browsers) a temporary identity is used and `persistent` is false. */
export async function loadIdentity(): Promise<{ identity: Identity; persistent: boolean }> {
  try {
    const db = await open();
    const stored = await run<unknown>(db, "readonly", (s) => s.get(KEY));
    if (stored instanceof Uint8Array && stored.length === 32) return { identity: new Identity(stored), persistent: true };
    const identity = Identity.generate();
    await run(db, "readwrite", (s) => s.put(identity.secret, KEY));
    return { identity, persistent: true };
  } catch {
    return { identity: Identity.generate(), persistent: false };
  }
}
