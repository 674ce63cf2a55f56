/** Messages between the page (main thread) and its network worker (net-worker.ts). */

import type { AssembledFrame } from "../rift/assembler.js";
import type { AssemblerStats } from "../rift/assembler.js";
import type { Pb } from "../rift/messages.js";
import type { SessionEvent, TransportCounters } from "../rift/session.js";
import type { TransportChoice } from "./params.js";

export interface StartRequest {
  t: "start";
  authorities: string[];
  certHashes: Uint8Array[];
  hostId: string | null;
  transport: TransportChoice;
  pageHost: string;
  secret: Uint8Array;
  name: string;
  codecs: number[];
  maxWidth: number;
  maxHeight: number;
}

export type ToWorker =
  | StartRequest
  | { t: "send"; msg: Pb }
  | { t: "pair"; code: string }
  | { t: "quit"; message: string };

export interface NetSnapshot {
  counters: TransportCounters;
  highestId: number;
  srttS: number | null;
  offsetS: number | null;
  maxPlaintext: number;
  carrierDropped: number;
  assembler: AssemblerStats | null;
  sessionState: string;
  hostId: string | null;
  hostName: string;
  ack: Pb | null;
  transport: string;
  reconnects: number;
}

export type FromWorker =
  | { t: "state"; state: string; error?: string; transport?: string }
  | { t: "event"; ev: Exclude<SessionEvent, { type: "frame" }> }
  | { t: "frame"; frame: AssembledFrame }
  | { t: "snapshot"; snap: NetSnapshot }
  | { t: "pair-error"; message: string }
  | { t: "ended"; kind: string; message: string };
