/** Host-minus-client clock offset and RTT from Ping/Pong (RIFT.md §6 "Clock offset"). */

interface Sample {
  rtt: number;
  offset: number;
}

export class ClockOffsetEstimator {
  private samples: Sample[] = [];
  srtt: number | null = null;
  minRtt: number | null = null;
  lastRtt: number | null = null;

  constructor(
    private readonly window = 32,
    private readonly best = 3,
  ) {}

  /** sent/received on the client clock, hostTime on the host clock (seconds). */
  add(sent: number, received: number, hostTime: number): Sample {
    const rtt = Math.max(0, received - sent);
    const s = { rtt, offset: hostTime - (sent + received) / 2 };
    this.samples.push(s);
    if (this.samples.length > this.window) this.samples.shift();
    this.srtt = this.srtt === null ? rtt : 0.875 * this.srtt + 0.125 * rtt;
    this.minRtt = this.minRtt === null ? rtt : Math.min(this.minRtt, rtt);
    this.lastRtt = rtt;
    return s;
  }

  get offset(): number | null {
    if (!this.samples.length) return null;
    const best = [...this.samples].sort((a, b) => a.rtt - b.rtt).slice(0, this.best);
    // a slow round trip bounds the offset only to ± half of it (a first Ping that waited in a
    // host busy starting its stream): it counts only next to samples about as quick as the best
    const bound = best[0].rtt * 1.5 + 0.001;
    const offs = best
      .filter((s) => s.rtt <= bound)
      .map((s) => s.offset)
      .sort((a, b) => a - b);
    return offs[Math.floor(offs.length / 2)];
  }
}
