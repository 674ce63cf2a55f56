/**
 * What the page needs to reach a host, from the link (docs/browser.md):
 *   https://HOST:PORT/#h=<certificate SHA-256, base64url>&id=<host Wavry ID>
 * plus query options: ?transport=websocket (force the fallback), ?marker=0|1, ?debug=1.
 * A fragment never leaves the browser. The gateway's /app fills the same fields from signaling.
 */

import { fromBase64url } from "../rift/bytes.js";
import { isWavryId } from "../rift/identity.js";

export type TransportChoice = "auto" | "webtransport" | "websocket";

export interface Target {
  /** host:port candidates serving /rift (WebTransport, UDP) and /rift-ws (WebSocket, TCP) */
  authorities: string[];
  certHashes: Uint8Array[];
  hostId: string | null;
  transport: TransportChoice;
  marker: boolean | null;
  name: string;
}

export class LinkError extends Error {}

export function parseLink(loc: { hash: string; search: string; host: string }): Target {
  // options belong in the query (before "#"), but a "?…" appended to the whole link lands in
  // the fragment: accept it there too, and any option given as a fragment parameter
  let hash = loc.hash.replace(/^#/, "");
  const query = new URLSearchParams(loc.search);
  const q = hash.indexOf("?");
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(hash.slice(q + 1))) query.set(k, v);
    hash = hash.slice(0, q);
  }
  const frag = new URLSearchParams(hash);
  for (const k of ["transport", "marker", "name"]) {
    const v = frag.get(k);
    if (v !== null && !query.has(k)) query.set(k, v);
  }
  const hashes: Uint8Array[] = [];
  for (const h of frag.getAll("h")) {
    let raw: Uint8Array;
    try {
      raw = fromBase64url(h);
    } catch {
      throw new LinkError("the link's certificate hash is not base64url: copy the whole link again");
    }
    if (raw.length !== 32) throw new LinkError("the link's certificate hash is not a SHA-256 hash");
    hashes.push(raw);
  }
  const id = frag.get("id");
  if (id !== null && !isWavryId(id)) {
    throw new LinkError("the link's host ID is not a Wavry ID (43 characters): copy the whole link again");
  }
  const t = (query.get("transport") ?? "auto").toLowerCase();
  if (t !== "auto" && t !== "webtransport" && t !== "websocket") {
    throw new LinkError(`unknown transport ${JSON.stringify(t)} (webtransport or websocket)`);
  }
  const marker = query.get("marker");
  return {
    authorities: [frag.get("host") ?? loc.host],
    certHashes: hashes,
    hostId: id,
    transport: t as TransportChoice,
    marker: marker === null ? null : marker !== "0",
    name: query.get("name") ?? "",
  };
}
