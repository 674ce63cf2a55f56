/**
 * The page served by a gateway at /app (CONTROL_PLANE.md §6 "From a browser"): sign in, list
 * this account's hosts, ask one through signaling for its web candidates, Wavry ID and
 * certificate hash, then connect straight to the host (RIFT.md §11). The gateway only
 * introduces: the RIFT handshake proves the host is the one the gateway listed.
 */

import { base64url, utf8 } from "../rift/bytes.js";
import type { Identity } from "../rift/identity.js";
import { fromBase64url } from "../rift/bytes.js";

export interface SignedIn {
  token: string;
  user: { id: string; username: string; display_name?: string };
}

export interface HostEntry {
  wavry_id: string;
  name: string;
  online: boolean;
  shared?: boolean;
}

export interface WebRendezvous {
  hostId: string;
  authorities: string[];
  certHashes: Uint8Array[];
}

export class GatewayError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "wavry-gateway-token";
const SIGNAL_TIMEOUT_MS = 15000;

async function api<T>(path: string, init: RequestInit & { token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const r = await fetch(path, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
  const body = r.status === 204 ? {} : await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = body as { error?: string; message?: string };
    throw new GatewayError(e.error ?? `http_${r.status}`, e.message ?? `the gateway answered ${r.status}`);
  }
  return body as T;
}

export function savedSignIn(): SignedIn | null {
  try {
    const raw = sessionStorage.getItem(TOKEN_KEY);
    return raw ? (JSON.parse(raw) as SignedIn) : null;
  } catch {
    return null;
  }
}

export async function signIn(login: string, password: string, totp: string): Promise<SignedIn> {
  const body: Record<string, string> = { login, password };
  if (totp) body.totp_code = totp;
  const out = await api<SignedIn>("/v1/auth/login", { method: "POST", body: JSON.stringify(body) });
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token: out.token, user: out.user }));
  return out;
}

export function signOut(s: SignedIn): void {
  sessionStorage.removeItem(TOKEN_KEY);
  void api("/v1/auth/logout", { method: "POST", token: s.token }).catch(() => {});
}

/** Register this browser's identity as a client device of the account (idempotent). */
export async function registerDevice(s: SignedIn, identity: Identity, name: string): Promise<void> {
  const proof = base64url(identity.sign(utf8.encode(`wavry-device:${s.user.id}`)));
  await api("/v1/devices", {
    method: "POST",
    token: s.token,
    body: JSON.stringify({ wavry_id: identity.wavryId, name: name.slice(0, 64) || "browser", kind: "client", proof }),
  });
}

export async function listHosts(s: SignedIn): Promise<HostEntry[]> {
  return (await api<{ hosts: HostEntry[] }>("/v1/hosts", { token: s.token })).hosts;
}

/** Ask `hostId` through the gateway's signaling for its browser rendezvous. */
export function rendezvous(s: SignedIn, identity: Identity, hostId: string): Promise<WebRendezvous> {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/signal`);
    const session = crypto.randomUUID();
    const done = (f: () => void) => {
      clearTimeout(timer);
      ws.onclose = null;
      ws.close();
      f();
    };
    const timer = setTimeout(
      () => done(() => reject(new GatewayError("timeout", "the host did not answer through the gateway"))),
      SIGNAL_TIMEOUT_MS,
    );
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: s.token, wavry_id: identity.wavryId, role: "client" }));
    ws.onerror = () => done(() => reject(new GatewayError("signal", "cannot reach the gateway's signaling")));
    ws.onclose = () => done(() => reject(new GatewayError("signal", "the gateway closed the signaling socket")));
    ws.onmessage = (ev: MessageEvent) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(String(ev.data)) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg.type === "ready") {
        ws.send(JSON.stringify({ type: "connect", session, host: hostId, candidates: [], transport: "web" }));
      } else if (msg.type === "error") {
        done(() => reject(new GatewayError(String(msg.code), String(msg.message))));
      } else if (msg.type === "reject" && msg.session === session) {
        done(() => reject(new GatewayError("rejected", `the host declined: ${String(msg.reason ?? "")}`)));
      } else if (msg.type === "accept" && msg.session === session) {
        const web = msg.web as { cert_sha256?: string; candidates?: Array<{ addr?: string }> } | undefined;
        const hostWavryId = String(msg.host_wavry_id ?? "");
        if (hostWavryId !== hostId) {
          done(() => reject(new GatewayError("mismatch", `the gateway answered for ${hostWavryId}, not ${hostId}`)));
          return;
        }
        if (!web || typeof web.cert_sha256 !== "string" || !Array.isArray(web.candidates) || !web.candidates.length) {
          done(() => reject(new GatewayError("no_web", "this host does not accept browser sessions (it runs without --web)")));
          return;
        }
        let hash: Uint8Array;
        try {
          hash = fromBase64url(web.cert_sha256);
        } catch {
          done(() => reject(new GatewayError("bad_accept", "the host's certificate hash is malformed")));
          return;
        }
        const authorities = web.candidates.map((c) => String(c.addr ?? "")).filter((a) => a.includes(":"));
        done(() => resolve({ hostId, authorities, certHashes: [hash] }));
      }
    };
  });
}
