/**
 * Carriers for RIFT datagrams in the browser (RIFT.md §11): WebTransport datagrams at
 * https://HOST:PORT/rift, or WebSocket binary messages at wss://HOST:PORT/rift-ws.
 */

export type CarrierKind = "webtransport" | "websocket";

export interface Carrier {
  readonly kind: CarrierKind;
  /** largest datagram this side may send */
  readonly maxDatagram: number;
  send(datagram: Uint8Array): void;
  close(): void;
  /** datagrams dropped before sending (the carrier's buffer was full) */
  dropped: number;
}

export interface CarrierHandlers {
  onDatagram(data: Uint8Array): void;
  /** the carrier ended (reason for the user) */
  onClose(reason: string): void;
}

/** RIFT.md §11: at most 1200 bytes, and never above what the browser can send. */
export const RIFT_MAX_DATAGRAM = 1200;

/** Keep this little in the WebSocket's send buffer; above it, drop (never queue). */
const WS_MAX_BUFFERED = 256 * 1024;

export async function openWebTransport(
  authority: string,
  certHashes: Uint8Array[],
  h: CarrierHandlers,
  timeoutMs = 5000,
): Promise<Carrier> {
  if (typeof WebTransport === "undefined") throw new Error("this browser has no WebTransport");
  // "low-latency": a hint that the browser's congestion control should favour delay over
  // throughput (RIFT runs its own, DELTA, on top)
  const options: WebTransportOptions = { congestionControl: "low-latency", requireUnreliable: true };
  if (certHashes.length) {
    options.serverCertificateHashes = certHashes.map((value) => ({ algorithm: "sha-256", value: value as BufferSource }));
  }
  const wt = new WebTransport(`https://${authority}/rift`, options);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("WebTransport did not connect in time")), timeoutMs);
  });
  try {
    await Promise.race([wt.ready, timeout]);
  } catch (e) {
    try {
      wt.close();
    } catch {
      /* already failed */
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const writer = wt.datagrams.writable.getWriter();
  const reader = wt.datagrams.readable.getReader();
  const max = Math.min(RIFT_MAX_DATAGRAM, wt.datagrams.maxDatagramSize || RIFT_MAX_DATAGRAM);
  let open = true;
  const carrier: Carrier = {
    kind: "webtransport",
    maxDatagram: max,
    dropped: 0,
    send(d: Uint8Array) {
      if (!open || d.length > max) {
        carrier.dropped++;
        return;
      }
      // datagram writes resolve at once; the browser drops what it cannot send
      writer.write(d).catch(() => carrier.dropped++);
    },
    close() {
      open = false;
      try {
        wt.close({ closeCode: 0, reason: "closed by the page" });
      } catch {
        /* already closed */
      }
    },
  };
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        h.onDatagram(value);
      }
    } catch {
      /* closed below */
    }
  })();
  wt.closed.then(
    () => {
      open = false;
      h.onClose("the host closed the WebTransport session");
    },
    (e: unknown) => {
      open = false;
      h.onClose(`WebTransport failed: ${String(e)}`);
    },
  );
  return carrier;
}

export function openWebSocket(authority: string, h: CarrierHandlers, timeoutMs = 5000): Promise<Carrier> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://${authority}/rift-ws`);
    ws.binaryType = "arraybuffer";
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        ws.close();
        reject(new Error("the WebSocket did not connect in time"));
      }
    }, timeoutMs);
    const carrier: Carrier = {
      kind: "websocket",
      maxDatagram: RIFT_MAX_DATAGRAM,
      dropped: 0,
      send(d: Uint8Array) {
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > WS_MAX_BUFFERED) {
          carrier.dropped++;
          return;
        }
        ws.send(d);
      },
      close() {
        ws.close(1000, "closed by the page");
      },
    };
    ws.onopen = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(carrier);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (ev.data instanceof ArrayBuffer) h.onDatagram(new Uint8Array(ev.data));
    };
    ws.onerror = () => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(new Error("the WebSocket could not connect (is the host's certificate accepted?)"));
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      if (settled) h.onClose(`the WebSocket closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
    };
  });
}
