/**
 * The pipe conditioner: the SFU's own loss repair and reordering allowance on a cascade link,
 * between the local PipeTransport and the network, at datagram level (the datagrams are opaque:
 * SRTP or not, never parsed).
 *
 *   PipeTransport ⇄ [local socket, loopback] ⇄ conditioner ⇄ [wire socket, pipe listen IP] ⇄ network ⇄ far conditioner ⇄ far PipeTransport
 *
 * - The PipeTransport connects to the local socket, and the conditioner delivers to it FROM that
 *   socket (mediasoup drops packets from any address other than the one it connected to). The
 *   agent advertises the wire socket to the other side; the wire socket only takes datagrams from
 *   the far wire endpoint it was given (`connect()`).
 * - Outgoing: each datagram gets a 5-byte trailer (link sequence number u32, type) and, after every
 *   `fecGroup` datagrams or `fecGroupMs` after the group's first (whichever comes first), a parity
 *   datagram: the XOR of the group's payloads padded to the longest, the XOR of their lengths, the
 *   group's first sequence number and count. Any single loss in a group is rebuilt at the far end
 *   without a round trip. The parity is as long as the group's longest datagram, so a group of a
 *   few audio packets and one video packet would cost nearly as much again: a group closes at its
 *   count or time only once its parity is within the byte budget (a fifth of the group's bytes,
 *   or 1/fecGroup if that is more: with the trailers, about 1.25 × the bytes in all); otherwise it
 *   grows, up to 4 × fecGroup datagrams or 4 × fecGroupMs, then closes anyway. Data keeps its first bytes (a relay or capture still reads RTP headers
 *   and SSRCs); a parity datagram starts and ends with its type byte (0xd8: neither RTP nor RTCP).
 * - Incoming: single losses are rebuilt from parity; datagrams go to the PipeTransport in link
 *   order with a bounded hold: a datagram after a gap waits until the gap fills (late arrival or
 *   rebuild) or the hold passes (derived from the gaps this link has seen filled, at most
 *   `reorderMaxMs`), then goes on. So mediasoup's NACK generator does not ask again for packets
 *   that were only late, and a packet really lost (two in a group) is NACKed as before, one hold
 *   later. A datagram that arrives after its gap was given up is still delivered (once); a second
 *   copy (a late original after its rebuild) is dropped.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface ConditionerSettings {
  /** Data datagrams per parity datagram; 0 = no FEC. */
  fecGroup: number;
  /** A group's parity is sent at most this long after its first datagram, ms. */
  fecGroupMs: number;
  /** Longest hold of a datagram behind a gap, ms; 0 = no reordering (delivered as it comes). */
  reorderMaxMs: number;
}

export interface ConditionerStats {
  /** Data datagrams (and their payload bytes) sent on the wire / delivered to the PipeTransport. */
  sent: number;
  sentBytes: number;
  delivered: number;
  /** Parity datagrams sent and their bytes (header included). */
  paritySent: number;
  parityBytes: number;
  /** Datagrams rebuilt from parity. */
  rebuilt: number;
  /** Datagrams that waited behind a gap. */
  held: number;
  /** Datagrams delivered because a hold expired (the gap before them was given up), and the datagrams given up. */
  releasedAfterHold: number;
  gaveUp: number;
  /** Datagrams that came after their gap was given up (delivered anyway, out of order). */
  late: number;
  /** Second copies dropped (a late original after its rebuild). */
  duplicates: number;
  /** Datagrams on the wire socket that were not ours (bad header, wrong sender, out of window). */
  dropped: number;
}

export interface ConditionerOptions extends ConditionerSettings {
  /** IP the wire socket binds to (the pipe listen IP). */
  wireIp: string;
  /** Address advertised for the wire socket. Default: wireIp. */
  announcedAddress?: string;
  /** Port range for the wire socket (firewalls). Default: any free port. */
  portRange?: { min: number; max: number };
}

export const emptyConditionerStats = (): ConditionerStats => ({
  sent: 0,
  sentBytes: 0,
  delivered: 0,
  paritySent: 0,
  parityBytes: 0,
  rebuilt: 0,
  held: 0,
  releasedAfterHold: 0,
  gaveUp: 0,
  late: 0,
  duplicates: 0,
  dropped: 0,
});

export const addConditionerStats = (into: ConditionerStats, from: ConditionerStats): void => {
  for (const k of Object.keys(into) as Array<keyof ConditionerStats>) into[k] += from[k];
};

interface Address {
  ip: string;
  port: number;
}

/** Data: payload ‖ seq u32 ‖ DATA. Parity: PARITY ‖ first seq u32 ‖ count u8 ‖ XOR of lengths u16 ‖ XOR of payloads ‖ PARITY. */
const DATA = 0xd7;
const PARITY = 0xd8;
const DATA_TRAILER = 5;
const PARITY_HEADER = 8;
/** Header and trailer bytes of a parity datagram. */
export const PARITY_OVERHEAD = PARITY_HEADER + 1;
/** Most datagrams in a group (the count travels in a byte; more would make a loss in it likely to be a double one). */
export const MAX_FEC_GROUP = 64;
/** A group's parity may cost this share of its bytes (or 1/fecGroup when more) before the group is closed at its count or time: with the 5-byte trailers (2–5 % of audio-sized datagrams) the link stays within 1.25 × its bytes. */
const PARITY_BUDGET = 0.2;
/** A group over budget grows up to this many times its count and time. */
const STRETCH = 4;
/** Receive window, datagrams: held, kept for rebuilds, and remembered for duplicates. */
const WINDOW = 1024;
/** Parities waiting for more of their group, at most. */
const MAX_PENDING_PARITIES = 32;
/** Fill delays of gaps kept for the hold (the last ones, within this long). */
const SAMPLES = 64;
const SAMPLE_TTL_MS = 10_000;

const PARITY_END = Buffer.from([PARITY]);

/** Signed distance a − b of two u32 sequence numbers (wrap handled). */
const seqDiff = (a: number, b: number): number => (a - b) | 0;
const seqAdd = (a: number, n: number): number => (a + n) >>> 0;

async function bindUdp(ip: string, range?: { min: number; max: number }): Promise<Socket> {
  const tries = range ? 24 : 1;
  let lastErr: unknown;
  for (let i = 0; i < tries; i++) {
    const port = range ? range.min + Math.floor(Math.random() * (range.max - range.min + 1)) : 0;
    const socket = createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, ip, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      return socket;
    } catch (err) {
      lastErr = err;
      socket.close();
    }
  }
  throw new Error(`pipe conditioner: no free UDP port on ${ip}: ${(lastErr as Error).message}`);
}

/** Validated settings (a bad one names the field). */
export function checkConditionerSettings(s: ConditionerSettings): void {
  if (!Number.isInteger(s.fecGroup) || s.fecGroup < 0 || s.fecGroup > MAX_FEC_GROUP) throw new TypeError(`fecGroup must be an integer 0..${MAX_FEC_GROUP}`);
  if (!Number.isFinite(s.fecGroupMs) || s.fecGroupMs < 1) throw new TypeError('fecGroupMs must be ≥ 1');
  if (!Number.isFinite(s.reorderMaxMs) || s.reorderMaxMs < 0) throw new TypeError('reorderMaxMs must be ≥ 0');
}

export const conditionerEnabled = (s: ConditionerSettings): boolean => s.fecGroup > 0 || s.reorderMaxMs > 0;

export class PipeConditioner {
  readonly stats: ConditionerStats = emptyConditionerStats();
  readonly #settings: ConditionerSettings;
  readonly #local: Socket;
  readonly #wire: Socket;
  readonly #announced: string;
  /** Where the PipeTransport listens (learnt from its datagrams when not given). */
  #pipe: Address | undefined;
  /** The far wire socket (as rewritten: a relay in tests and the launcher). */
  #remote: Address | undefined;
  #closed = false;

  // --- sending ---
  #nextSeq = 0;
  #groupFirst = 0;
  #groupCount = 0;
  #groupLenXor = 0;
  #groupMaxLen = 0;
  #groupBytes = 0;
  /** The group's time is up (it waits only for its budget). */
  #groupDue = false;
  #groupXor = Buffer.alloc(1500);
  #groupTimer: NodeJS.Timeout | undefined;

  // --- receiving ---
  /** Next sequence number to deliver; undefined until the first datagram. */
  #expect: number | undefined;
  readonly #slotSeq = new Float64Array(WINDOW).fill(-1);
  readonly #slotPayload: Array<Buffer | undefined> = new Array<Buffer | undefined>(WINDOW);
  readonly #slotArrivedAt = new Float64Array(WINDOW);
  readonly #slotDelivered = new Uint8Array(WINDOW);
  /** Stored, not delivered yet. */
  #heldCount = 0;
  #holdTimer: NodeJS.Timeout | undefined;
  readonly #parities = new Map<number, { first: number; count: number; lenXor: number; xor: Buffer }>();
  /** Fill delays of gaps (ms) and when each was seen. */
  readonly #samples: Array<{ ms: number; at: number }> = [];

  private constructor(local: Socket, wire: Socket, options: ConditionerOptions) {
    this.#settings = { fecGroup: options.fecGroup, fecGroupMs: options.fecGroupMs, reorderMaxMs: options.reorderMaxMs };
    this.#local = local;
    this.#wire = wire;
    this.#announced = options.announcedAddress ?? options.wireIp;
    local.on('message', (msg, rinfo) => this.#fromPipe(msg, rinfo));
    wire.on('message', (msg, rinfo) => this.#fromWire(msg, rinfo));
    // A send to a closed port comes back as an error on some systems: not fatal.
    local.on('error', () => undefined);
    wire.on('error', () => undefined);
  }

  /** Binds the local (loopback) and wire sockets. */
  static async open(options: ConditionerOptions): Promise<PipeConditioner> {
    checkConditionerSettings(options);
    const local = await bindUdp('127.0.0.1');
    let wire: Socket;
    try {
      wire = await bindUdp(options.wireIp, options.portRange);
    } catch (err) {
      local.close();
      throw err;
    }
    return new PipeConditioner(local, wire, options);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** What the local PipeTransport connects to. */
  get localEndpoint(): Address {
    const { address, port } = this.#local.address();
    return { ip: address, port };
  }

  /** What the other side is told to send to (instead of the PipeTransport's endpoint). */
  get wireEndpoint(): Address {
    return { ip: this.#announced, port: this.#wire.address().port };
  }

  /** The hold a datagram behind a gap gets now, ms. */
  get holdMs(): number {
    const max = this.#settings.reorderMaxMs;
    if (max <= 0) return 0;
    const now = performance.now();
    let worst = -1;
    for (const s of this.#samples) if (now - s.at <= SAMPLE_TTL_MS && s.ms > worst) worst = s.ms;
    // No gap filled lately: the longest (the first gaps teach the link's figure).
    if (worst < 0) return max;
    return Math.min(max, Math.max(2, Math.ceil(worst * 1.5 + 3)));
  }

  /** Where the local PipeTransport listens. */
  setPipe(pipe: Address): void {
    this.#pipe = { ...pipe };
  }

  /** The far wire endpoint (possibly rewritten: a relay). */
  connect(remote: Address): void {
    this.#remote = { ...remote };
  }

  /** Closes both sockets and every timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#groupTimer);
    clearTimeout(this.#holdTimer);
    this.#groupTimer = undefined;
    this.#holdTimer = undefined;
    this.#parities.clear();
    this.#slotPayload.fill(undefined);
    for (const s of [this.#local, this.#wire]) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }

  // --- sending ---

  #fromPipe(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.#closed) return;
    // Loopback only: the PipeTransport is the one sender; learn it (its listen IP may differ from what we were told).
    if (!this.#pipe || this.#pipe.port !== rinfo.port || this.#pipe.ip !== rinfo.address) this.#pipe = { ip: rinfo.address, port: rinfo.port };
    const remote = this.#remote;
    if (!remote) return;
    const seq = this.#nextSeq;
    this.#nextSeq = seqAdd(seq, 1);
    const trailer = Buffer.allocUnsafe(DATA_TRAILER);
    trailer.writeUInt32BE(seq, 0);
    trailer[4] = DATA;
    this.#wire.send([msg, trailer], remote.port, remote.ip);
    this.stats.sent++;
    this.stats.sentBytes += msg.length;
    if (this.#settings.fecGroup > 0) this.#addToGroup(seq, msg);
  }

  #addToGroup(seq: number, msg: Buffer): void {
    if (this.#groupCount === 0) {
      this.#groupFirst = seq;
      this.#groupLenXor = 0;
      this.#groupMaxLen = 0;
      this.#groupBytes = 0;
      this.#groupDue = false;
      this.#groupTimer = setTimeout(() => {
        this.#groupDue = true;
        if (this.#withinBudget()) {
          this.#sendParity();
          return;
        }
        this.#groupTimer = setTimeout(() => this.#sendParity(), this.#settings.fecGroupMs * (STRETCH - 1));
      }, this.#settings.fecGroupMs);
    }
    if (msg.length > this.#groupXor.length) {
      const grown = Buffer.alloc(Math.max(msg.length, this.#groupXor.length * 2));
      this.#groupXor.copy(grown, 0, 0, this.#groupMaxLen);
      this.#groupXor = grown;
    }
    const xor = this.#groupXor;
    for (let i = 0; i < msg.length; i++) xor[i]! ^= msg[i]!;
    this.#groupLenXor ^= msg.length & 0xffff;
    if (msg.length > this.#groupMaxLen) this.#groupMaxLen = msg.length;
    this.#groupBytes += msg.length;
    this.#groupCount++;
    const n = this.#settings.fecGroup;
    if (this.#groupCount >= Math.min(MAX_FEC_GROUP, n * STRETCH) || ((this.#groupCount >= n || this.#groupDue) && this.#withinBudget())) this.#sendParity();
  }

  /** The parity would cost at most the budget share of the group's bytes. */
  #withinBudget(): boolean {
    return this.#groupMaxLen + PARITY_OVERHEAD <= Math.max(PARITY_BUDGET, 1 / this.#settings.fecGroup) * this.#groupBytes;
  }

  #sendParity(): void {
    clearTimeout(this.#groupTimer);
    this.#groupTimer = undefined;
    const count = this.#groupCount;
    if (count === 0 || this.#closed) return;
    const remote = this.#remote;
    const header = Buffer.allocUnsafe(PARITY_HEADER);
    header[0] = PARITY;
    header.writeUInt32BE(this.#groupFirst, 1);
    header[5] = count;
    header.writeUInt16BE(this.#groupLenXor, 6);
    const body = Buffer.from(this.#groupXor.subarray(0, this.#groupMaxLen));
    this.#groupXor.fill(0, 0, this.#groupMaxLen);
    this.#groupCount = 0;
    if (!remote) return;
    this.#wire.send([header, body, PARITY_END], remote.port, remote.ip);
    this.stats.paritySent++;
    this.stats.parityBytes += PARITY_OVERHEAD + body.length;
  }

  // --- receiving ---

  #fromWire(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.#closed) return;
    const remote = this.#remote;
    if (!remote || rinfo.port !== remote.port || rinfo.address !== remote.ip) {
      this.stats.dropped++;
      return;
    }
    const type = msg.length > 0 ? msg[msg.length - 1] : undefined;
    if (type === DATA && msg.length > DATA_TRAILER) {
      this.#onData(msg.readUInt32BE(msg.length - DATA_TRAILER), msg.subarray(0, msg.length - DATA_TRAILER), false);
    } else if (type === PARITY && msg.length > PARITY_OVERHEAD && msg[0] === PARITY && msg[5]! > 0 && msg[5]! <= MAX_FEC_GROUP) {
      this.#onParity(msg.readUInt32BE(1), msg[5]!, msg.readUInt16BE(6), msg.subarray(PARITY_HEADER, msg.length - 1));
    } else {
      this.stats.dropped++;
    }
  }

  #onData(seq: number, payload: Buffer, rebuilt: boolean): void {
    this.#expect ??= seq;
    const d = seqDiff(seq, this.#expect);
    // Far outside the window: not a datagram of this link's present (a forged or stray one).
    if (d <= -WINDOW / 2 || d >= WINDOW * 4) {
      this.stats.dropped++;
      return;
    }
    const slot = seq % WINDOW;
    if (this.#slotSeq[slot] === seq) {
      this.stats.duplicates++;
      return;
    }
    const now = performance.now();
    if (rebuilt) this.stats.rebuilt++;
    if (d < 0) {
      // Its gap was given up: deliver it now (mediasoup takes it as a late packet), once.
      this.#store(slot, seq, payload, now);
      this.#deliver(slot);
      this.stats.late++;
      // How late it came: the hold should have been that long.
      const after = this.#arrivalAfter(seq);
      if (after !== undefined) this.#sample(now - after, now);
      this.#checkParities(seq);
      return;
    }
    // Beyond the window: give up the oldest gaps to make room.
    if (d >= WINDOW - 64) this.#advanceTo(seqAdd(seq, -(WINDOW - 128)), now);
    if (this.#heldCount > 0) {
      // A gap is open: if this datagram (or its rebuild) fills it, that is how late a packet comes here.
      const after = this.#arrivalAfter(seq);
      if (after !== undefined) this.#sample(now - after, now);
    }
    this.#store(slot, seq, payload, now);
    if (seq === this.#expect) {
      this.#deliver(slot);
      this.#expect = seqAdd(seq, 1);
      this.#drainHeld();
    } else {
      this.#heldCount++;
      this.stats.held++;
      if (this.#settings.reorderMaxMs <= 0) this.#release(now, true);
    }
    this.#checkParities(seq);
    this.#scheduleHold();
  }

  #store(slot: number, seq: number, payload: Buffer, now: number): void {
    this.#slotSeq[slot] = seq;
    this.#slotPayload[slot] = payload;
    this.#slotArrivedAt[slot] = now;
    this.#slotDelivered[slot] = 0;
  }

  #deliver(slot: number): void {
    const payload = this.#slotPayload[slot];
    this.#slotDelivered[slot] = 1;
    const pipe = this.#pipe;
    if (!payload || !pipe) return;
    this.#local.send(payload, pipe.port, pipe.ip);
    this.stats.delivered++;
  }

  /** Arrival time of the first datagram here after `seq` (the one that came before it: the gap opened then). */
  #arrivalAfter(seq: number): number | undefined {
    for (let i = 1; i <= MAX_FEC_GROUP * 2; i++) {
      const s = seqAdd(seq, i);
      if (this.#slotSeq[s % WINDOW] === s) return this.#slotArrivedAt[s % WINDOW];
    }
    return undefined;
  }

  #sample(ms: number, now: number): void {
    this.#samples.push({ ms, at: now });
    if (this.#samples.length > SAMPLES) this.#samples.shift();
  }

  /** Gives up the gaps before `seq`: delivers what is held before it. */
  #advanceTo(seq: number, now: number): void {
    while (seqDiff(seq, this.#expect!) > 0) {
      const expect = this.#expect!;
      const slot = expect % WINDOW;
      if (this.#slotSeq[slot] === expect) {
        if (!this.#slotDelivered[slot]) {
          this.#deliver(slot);
          this.#heldCount = Math.max(0, this.#heldCount - 1);
          this.stats.releasedAfterHold++;
        }
      } else {
        this.stats.gaveUp++;
      }
      this.#expect = seqAdd(expect, 1);
    }
    void now;
  }

  /**
   * Hold expiry (or no hold at all): gives up every gap before the held datagrams whose hold is
   * over, delivering them and what follows them in order.
   */
  #release(now: number, all: boolean): void {
    const hold = this.holdMs;
    // The last held datagram whose hold is over.
    let until: number | undefined;
    for (const { seq, slot } of this.#held()) if (all || now - this.#slotArrivedAt[slot]! >= hold) until = seq;
    if (until === undefined) return;
    this.#advanceTo(until, now);
    const before = this.stats.delivered;
    this.#drainHeld();
    this.stats.releasedAfterHold += this.stats.delivered - before;
  }

  /** The datagrams held behind the gap, in sequence order. */
  *#held(): Generator<{ seq: number; slot: number }> {
    const expect = this.#expect!;
    for (let i = 1, seen = 0; i < WINDOW && seen < this.#heldCount; i++) {
      const seq = seqAdd(expect, i);
      const slot = seq % WINDOW;
      if (this.#slotSeq[slot] !== seq || this.#slotDelivered[slot]) continue;
      seen++;
      yield { seq, slot };
    }
  }

  /** Delivers the held datagrams that follow in order. */
  #drainHeld(): void {
    for (;;) {
      const expect = this.#expect!;
      const slot = expect % WINDOW;
      if (this.#slotSeq[slot] !== expect) return;
      if (!this.#slotDelivered[slot]) {
        this.#deliver(slot);
        this.#heldCount = Math.max(0, this.#heldCount - 1);
      }
      this.#expect = seqAdd(expect, 1);
    }
  }

  #scheduleHold(): void {
    if (this.#heldCount === 0) {
      clearTimeout(this.#holdTimer);
      this.#holdTimer = undefined;
      return;
    }
    if (this.#holdTimer) return;
    // The oldest held datagram's deadline.
    let oldest = Infinity;
    for (const { slot } of this.#held()) if (this.#slotArrivedAt[slot]! < oldest) oldest = this.#slotArrivedAt[slot]!;
    if (oldest === Infinity) {
      this.#heldCount = 0;
      return;
    }
    const wait = Math.max(0, oldest + this.holdMs - performance.now());
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = undefined;
      if (this.#closed) return;
      this.#release(performance.now(), false);
      this.#scheduleHold();
    }, Math.ceil(wait));
  }

  #onParity(first: number, count: number, lenXor: number, xor: Buffer): void {
    if (this.#expect === undefined) return;
    const d = seqDiff(first, this.#expect);
    if (d <= -WINDOW / 2 + MAX_FEC_GROUP || d >= WINDOW * 4) {
      this.stats.dropped++;
      return;
    }
    const parity = { first, count, lenXor, xor: Buffer.from(xor) };
    if (this.#tryRebuild(parity)) return;
    this.#parities.set(first, parity);
    if (this.#parities.size > MAX_PENDING_PARITIES) this.#parities.delete(this.#parities.keys().next().value!);
  }

  /** Parities waiting for more of their group: try them with `seq` now here. */
  #checkParities(seq: number): void {
    if (this.#parities.size === 0) return;
    for (const [key, p] of this.#parities) {
      const d = seqDiff(seq, p.first);
      if (seqDiff(p.first, this.#expect!) <= -WINDOW / 2 + MAX_FEC_GROUP) this.#parities.delete(key);
      else if (d >= 0 && d < p.count && this.#tryRebuild(p)) this.#parities.delete(key);
    }
  }

  /** Rebuilds the one missing datagram of a group; true when the parity is used up (nothing or one missing). */
  #tryRebuild(p: { first: number; count: number; lenXor: number; xor: Buffer }): boolean {
    let missing: number | undefined;
    for (let i = 0; i < p.count; i++) {
      const s = seqAdd(p.first, i);
      if (this.#slotSeq[s % WINDOW] === s) continue;
      if (missing !== undefined) return false;
      missing = s;
    }
    if (missing === undefined) return true;
    const out = Buffer.from(p.xor);
    let len = p.lenXor;
    for (let i = 0; i < p.count; i++) {
      const s = seqAdd(p.first, i);
      if (s === missing) continue;
      const payload = this.#slotPayload[s % WINDOW]!;
      if (payload.length > out.length) {
        // Not a parity of what we hold (or forged): nothing to rebuild.
        this.stats.dropped++;
        return true;
      }
      for (let j = 0; j < payload.length; j++) out[j]! ^= payload[j]!;
      len ^= payload.length & 0xffff;
    }
    if (len === 0 || len > out.length) {
      this.stats.dropped++;
      return true;
    }
    this.#onData(missing, out.subarray(0, len), true);
    return true;
  }
}

/**
 * What a datagram on a conditioned link carries for the pipe transports: the payload of a data
 * datagram, nothing for a parity one (for captures and relays that read RTP/RTCP on the wire).
 */
export function conditionedPayload(datagram: Buffer): Buffer | undefined {
  return datagram.length > DATA_TRAILER && datagram[datagram.length - 1] === DATA ? datagram.subarray(0, datagram.length - DATA_TRAILER) : undefined;
}
