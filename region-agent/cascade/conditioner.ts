/**
 * The pipe conditioner: the SFU's own loss repair and reordering allowance on a cascade link,
 * between the local PipeTransport and the network.
 *
 *   PipeTransport ⇄ [local socket, loopback] ⇄ conditioner ⇄ [wire socket, pipe listen IP] ⇄ network ⇄ far conditioner ⇄ far PipeTransport
 *
 * - The PipeTransport connects to the local socket, and the conditioner delivers to it FROM that
 *   socket (mediasoup drops packets from any address other than the one it connected to). The
 *   agent advertises the wire socket to the other side; the wire socket only takes datagrams from
 *   the far wire endpoint it was given (`connect()`).
 * - It reads RTP headers only (clear under SRTP too: SSRC, sequence number, payload type) and
 *   leaves every datagram as mediasoup sent it. Only the **protected** streams (RTP whose payload
 *   type is one of the video codecs', given at open) are repaired: a lost video packet stops the
 *   picture until it comes, while a lost audio packet is concealed in 20 ms, and retransmissions
 *   (RTX) and RTCP are repair traffic themselves. Everything else passes straight through.
 * - Outgoing, per protected stream: consecutive packets form a group; its parity datagram (the
 *   XOR of the group's packets padded to the longest, the XOR of their lengths, SSRC, first
 *   sequence number and count) lets the far end rebuild any one lost packet of the group without
 *   a round trip. Parity is paid from a byte budget, a share of all the bytes the link sends
 *   (shared by its streams): a group closes as soon as the budget covers its parity, so a lost
 *   packet is rebuilt about as soon as the budget allows (about two frames of low-rate video at a
 *   share of a quarter), and at the latest `fecGroupMs` after the group's first packet, borrowing
 *   up to one parity ahead when the budget is short (a slow stream still gets its repair in time).
 * - The share follows the loss: the far end reports every REPORT_MS how many protected packets
 *   it lost on the way and how many came; over its last minute of reports the share is `fecShare`
 *   from FULL_SHARE_LOSS up, in proportion below it. A link is protected in full until its reports
 *   count LOSS_MIN_PACKETS packets (about 40 s of one camera), so a link that loses a packet now
 *   and then keeps its protection, and a clean one carries no parity after its first minute.
 * - Incoming: a protected stream's packets reach the PipeTransport in sequence order; those
 *   behind a gap wait until the gap fills (the late packet itself, or its rebuild) or for a
 *   reordering allowance (derived from how late packets come on this link, `reorderMaxMs` at
 *   most). So mediasoup's NACK generator, which asks at the first packet past a gap, does not ask
 *   for packets that were only reordered, and the browser behind this SFU does not see the
 *   reordering. A gap still open after the allowance goes to mediasoup, which asks the origin at
 *   once: the packet comes back by whichever is first, its rebuild (within a group's time) or its
 *   retransmission (a round trip), and is delivered when it comes (once; a second copy is dropped).
 *   Waiting for the parity instead would save the retransmission's bytes but add a group's time
 *   to every loss that parity cannot repair (two in a group, or the parity lost).
 * - A parity datagram starts with 0xd8 (version bits 3: neither RTP nor RTCP); the far end sends
 *   parity only when this side runs the conditioner too (`setFar`).
 */
import { createSocket, type Socket } from 'node:dgram';

export interface ConditionerSettings {
  /** Parity bytes per byte of protected (video) RTP sent; 0 = no FEC. */
  fecShare: number;
  /** A group's parity goes at the latest this long after the group's first packet, ms. */
  fecGroupMs: number;
  /** Longest reordering allowance (a protected packet's hold behind a gap), ms; 0 = no hold (delivered as it comes). */
  reorderMaxMs: number;
}

export interface ConditionerStats {
  /** Datagrams (and their bytes) sent on the wire / delivered to the PipeTransport. */
  sent: number;
  sentBytes: number;
  delivered: number;
  /** Protected packets sent and their bytes; protected packets received (once each, rebuilt ones included). */
  protectedSent: number;
  protectedBytes: number;
  protectedReceived: number;
  /** Parity datagrams sent and their bytes (header included). */
  paritySent: number;
  parityBytes: number;
  /** Packets rebuilt from parity. */
  rebuilt: number;
  /** Packets that waited behind a gap. */
  held: number;
  /** Packets delivered because the gap before them was given up, and the packets given up. */
  releasedAfterHold: number;
  gaveUp: number;
  /** Packets that came after their gap was given up (delivered anyway, out of order). */
  late: number;
  /** Second copies dropped (a late original after its rebuild, or a repeat). */
  duplicates: number;
  /** Datagrams on the wire socket that were not ours (wrong sender, bad parity, out of window). */
  dropped: number;
}

export interface ConditionerOptions extends ConditionerSettings {
  /** IP the wire socket binds to (the pipe listen IP). */
  wireIp: string;
  /** Address advertised for the wire socket. Default: wireIp. */
  announcedAddress?: string;
  /** Port range for the wire socket (firewalls). Default: any free port. */
  portRange?: { min: number; max: number };
  /** RTP payload types of the protected streams (the room's video codecs, RTX excluded). */
  protectedPayloadTypes: Iterable<number>;
}

export const emptyConditionerStats = (): ConditionerStats => ({
  sent: 0,
  sentBytes: 0,
  delivered: 0,
  protectedSent: 0,
  protectedBytes: 0,
  protectedReceived: 0,
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

/** Parity: PARITY ‖ SSRC u32 ‖ first seq u16 ‖ count u8 ‖ XOR of lengths u16 ‖ XOR of the packets. */
const PARITY = 0xd8;
export const PARITY_HEADER = 10;
/** Loss report: REPORT ‖ protected packets lost u32 ‖ received u32 (since the last report). */
const REPORT = 0xd9;
const REPORT_LENGTH = 9;
/** How often a link's receiver reports its loss, ms. */
export const REPORT_MS = 500;
/** The loss at which the whole `fecShare` is spent (in proportion below it). */
export const FULL_SHARE_LOSS = 0.005;
/** The loss the share follows is the far end's over its last LOSS_REPORTS reports (a minute)... */
const LOSS_REPORTS = 120;
/** ...once they count this many packets: a younger link is protected in full. */
const LOSS_MIN_PACKETS = 1_000;

/** Most packets in a group (the count travels in a byte; more would make a loss in it likely to be a double one). */
export const MAX_FEC_GROUP = 64;
/** How far the budget may run ahead (a quiet link does not save up for a burst of parity), and behind (one parity borrowed when a group's time is up). */
const CREDIT_CAP = 3_000;
const DEBT_MAX = 1_500;
/** Streams per link tracked at most (each way; a pipe carries a room's producers from one node). */
const MAX_STREAMS = 64;
/** Packets kept per received stream: held, kept for rebuilds, remembered for duplicates. */
const WINDOW = 512;
/** Parities per stream waiting for more of their group, at most. */
const MAX_PENDING_PARITIES = 16;
/** Fill delays of gaps (late packets) kept for the allowance: the last ones, within this long. */
const SAMPLES = 64;
const SAMPLE_TTL_MS = 10_000;
/** The allowance before any packet came late on the link. */
const FIRST_ALLOWANCE_MS = 20;

/** Signed distance a − b of two RTP sequence numbers. */
const seqDiff = (a: number, b: number): number => ((((a - b) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
const seqAdd = (a: number, n: number): number => (a + n) & 0xffff;

/** The SSRC, sequence number and payload type of an RTP packet (not RTCP), else undefined. */
function rtpHeader(b: Buffer): { ssrc: number; seq: number; pt: number } | undefined {
  if (b.length < 12 || (b[0]! & 0xc0) !== 0x80) return undefined;
  const pt = b[1]! & 0x7f;
  if (pt >= 64 && pt <= 95) return undefined; // RTCP (192..223 with the marker bit)
  return { ssrc: b.readUInt32BE(8), seq: b.readUInt16BE(2), pt };
}

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
  if (!Number.isFinite(s.fecShare) || s.fecShare < 0 || s.fecShare > 1) throw new TypeError('fecShare must be a number 0..1');
  if (!Number.isFinite(s.fecGroupMs) || s.fecGroupMs < 1) throw new TypeError('fecGroupMs must be ≥ 1');
  if (!Number.isFinite(s.reorderMaxMs) || s.reorderMaxMs < 0) throw new TypeError('reorderMaxMs must be ≥ 0');
  // Rebuilt packets go in order behind their gap: parity is of no use to a side that holds nothing.
  if (s.fecShare > 0 && s.reorderMaxMs <= 0) throw new TypeError('reorderMaxMs must be > 0 when fecShare is (rebuilt packets are delivered in order behind their gap)');
}

/** What the far end of a link does. */
export interface FarEnd {
  /** It runs the conditioner: it takes parity and loss reports. */
  conditioned: boolean;
}

export const conditionerEnabled = (s: ConditionerSettings): boolean => s.fecShare > 0 || s.reorderMaxMs > 0;

/** A protected stream's open group (sending). */
interface SendGroup {
  first: number;
  count: number;
  lenXor: number;
  maxLen: number;
  xor: Buffer;
  /** Its time (fecGroupMs) is up: it closes as soon as the budget allows, borrowing. */
  due: boolean;
  timer: NodeJS.Timeout | undefined;
}

interface Parity {
  first: number;
  count: number;
  lenXor: number;
  xor: Buffer;
}

/** A protected stream as received. */
interface RecvStream {
  readonly ssrc: number;
  /** Next sequence number to deliver. */
  expect: number;
  readonly slotSeq: Int32Array;
  readonly slotPayload: Array<Buffer | undefined>;
  readonly slotArrivedAt: Float64Array;
  readonly slotDelivered: Uint8Array;
  /** Stored, not delivered yet (held behind a gap). */
  heldCount: number;
  readonly parities: Map<number, Parity>;
}

export class PipeConditioner {
  readonly stats: ConditionerStats = emptyConditionerStats();
  readonly #settings: ConditionerSettings;
  readonly #protected: ReadonlySet<number>;
  readonly #local: Socket;
  readonly #wire: Socket;
  readonly #announced: string;
  /** Where the PipeTransport listens (learnt from its datagrams when not given). */
  #pipe: Address | undefined;
  /** The far wire socket (as rewritten: a relay in tests and the launcher). */
  #remote: Address | undefined;
  #far: FarEnd = { conditioned: true };
  #closed = false;

  // --- sending ---
  readonly #groups = new Map<number, SendGroup>();
  /** Parity bytes the budget allows now (negative: borrowed). */
  #credit = 0;
  /** The far end's last reports (lost, received), oldest first, and the share they make (see shareNow). */
  readonly #reports: Array<{ lost: number; received: number }> = [];
  #share: number;

  // --- receiving ---
  readonly #streams = new Map<number, RecvStream>();
  #holdTimer: NodeJS.Timeout | undefined;
  #holdTimerAt = Infinity;
  #reportTimer: NodeJS.Timeout;
  /** Counters at the last report (lost = rebuilt − duplicates + given up − late, received = protected delivered − rebuilt). */
  #reported = { lost: 0, received: 0 };
  /** How late packets came behind their gap (ms), and when. */
  readonly #samples: Array<{ ms: number; at: number }> = [];

  private constructor(local: Socket, wire: Socket, options: ConditionerOptions) {
    this.#settings = { fecShare: options.fecShare, fecGroupMs: options.fecGroupMs, reorderMaxMs: options.reorderMaxMs };
    this.#share = options.fecShare;
    this.#protected = new Set(options.protectedPayloadTypes);
    this.#local = local;
    this.#wire = wire;
    this.#announced = options.announcedAddress ?? options.wireIp;
    local.on('message', (msg, rinfo) => this.#fromPipe(msg, rinfo));
    wire.on('message', (msg, rinfo) => this.#fromWire(msg, rinfo));
    // A send to a closed port comes back as an error on some systems: not fatal.
    local.on('error', () => undefined);
    wire.on('error', () => undefined);
    this.#reportTimer = setInterval(() => this.#report(), REPORT_MS);
    this.#reportTimer.unref();
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

  /** How long a gap is waited for (a packet reordered behind it may yet come), ms: 1.5 × the latest the link's packets came lately + 3 ms, within reorderMaxMs. */
  get allowanceMs(): number {
    const max = this.#settings.reorderMaxMs;
    if (max <= 0) return 0;
    const now = performance.now();
    let worst = -1;
    for (const s of this.#samples) if (now - s.at <= SAMPLE_TTL_MS && s.ms > worst) worst = s.ms;
    if (worst < 0) return Math.min(max, FIRST_ALLOWANCE_MS);
    return Math.min(max, Math.max(2, Math.ceil(worst * 1.5 + 3)));
  }

  /** The share of the bytes the link spends on parity now: `fecShare`, scaled down by the far end's loss below FULL_SHARE_LOSS. */
  get shareNow(): number {
    return this.#share;
  }

  /** Where the local PipeTransport listens. */
  setPipe(pipe: Address): void {
    this.#pipe = { ...pipe };
  }

  /** The far wire endpoint (possibly rewritten: a relay). */
  connect(remote: Address): void {
    this.#remote = { ...remote };
  }

  /** What the far end does (told in the link's open and its answer; default: it conditions): parity and reports go only to one that conditions. */
  setFar(far: FarEnd): void {
    this.#far = { ...far };
    if (!far.conditioned) this.#clearGroups();
  }

  /** Closes both sockets and every timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearGroups();
    clearTimeout(this.#holdTimer);
    clearInterval(this.#reportTimer);
    this.#holdTimer = undefined;
    this.#streams.clear();
    for (const s of [this.#local, this.#wire]) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }

  #clearGroups(): void {
    for (const g of this.#groups.values()) clearTimeout(g.timer);
    this.#groups.clear();
  }

  // --- sending ---

  #fromPipe(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.#closed) return;
    // Loopback only: the PipeTransport is the one sender; learn it (its listen IP may differ from what we were told).
    if (!this.#pipe || this.#pipe.port !== rinfo.port || this.#pipe.ip !== rinfo.address) this.#pipe = { ip: rinfo.address, port: rinfo.port };
    const remote = this.#remote;
    if (!remote) return;
    this.#wire.send(msg, remote.port, remote.ip);
    this.stats.sent++;
    this.stats.sentBytes += msg.length;
    const share = this.shareNow;
    const repairs = share > 0 && this.#far.conditioned;
    // The budget is a share of everything the link carries; it is spent on the protected streams.
    if (repairs) this.#credit = Math.min(CREDIT_CAP, this.#credit + share * msg.length);
    const rtp = rtpHeader(msg);
    if (!rtp || !this.#protected.has(rtp.pt)) return;
    this.stats.protectedSent++;
    this.stats.protectedBytes += msg.length;
    if (repairs) this.#addToGroup(rtp.ssrc, rtp.seq, msg);
  }

  #addToGroup(ssrc: number, seq: number, msg: Buffer): void {
    let group = this.#groups.get(ssrc);
    // A group covers consecutive packets: one out of sequence (a late one upstream) goes unprotected.
    if (group && seq !== seqAdd(group.first, group.count)) {
      if (seqDiff(seq, group.first) < group.count) return;
      // A jump ahead (packets lost upstream): the group so far gets its parity if the budget allows.
      const cost = PARITY_HEADER + group.maxLen;
      this.#sendParity(ssrc, group, this.#credit - cost >= -DEBT_MAX);
      group = undefined;
    }
    if (!group) {
      if (!this.#groups.has(ssrc) && this.#groups.size >= MAX_STREAMS) this.#dropOldestGroup();
      group = { first: seq, count: 0, lenXor: 0, maxLen: 0, xor: Buffer.alloc(Math.max(1500, msg.length)), due: false, timer: undefined };
      const g = group;
      group.timer = setTimeout(() => {
        g.timer = undefined;
        g.due = true;
        if (this.#groups.get(ssrc) === g) this.#closeIfPaid(ssrc, g);
      }, this.#settings.fecGroupMs);
      this.#groups.set(ssrc, group);
    }
    if (msg.length > group.xor.length) {
      const grown = Buffer.alloc(msg.length);
      group.xor.copy(grown, 0, 0, group.maxLen);
      group.xor = grown;
    }
    const xor = group.xor;
    for (let i = 0; i < msg.length; i++) xor[i]! ^= msg[i]!;
    group.lenXor ^= msg.length & 0xffff;
    if (msg.length > group.maxLen) group.maxLen = msg.length;
    group.count++;
    this.#closeIfPaid(ssrc, group);
  }

  /**
   * Closes the group with its parity when the budget pays for it; once the group's time is up,
   * with at most DEBT_MAX borrowed. Otherwise the group goes on growing (up to MAX_FEC_GROUP).
   */
  #closeIfPaid(ssrc: number, group: SendGroup): void {
    const cost = PARITY_HEADER + group.maxLen;
    if (group.count >= MAX_FEC_GROUP || this.#credit >= cost || (group.due && this.#credit - cost >= -DEBT_MAX)) this.#sendParity(ssrc, group, true);
  }

  #dropOldestGroup(): void {
    const [ssrc, g] = this.#groups.entries().next().value!;
    clearTimeout(g.timer);
    this.#groups.delete(ssrc);
  }

  /** Closes the group: with its parity when `paid`, else (cut short by a packet out of sequence) without. */
  #sendParity(ssrc: number, group: SendGroup, paid: boolean): void {
    clearTimeout(group.timer);
    this.#groups.delete(ssrc);
    const remote = this.#remote;
    if (!paid || !remote || this.#closed) return;
    const cost = PARITY_HEADER + group.maxLen;
    this.#credit -= cost;
    const header = Buffer.allocUnsafe(PARITY_HEADER);
    header[0] = PARITY;
    header.writeUInt32BE(ssrc, 1);
    header.writeUInt16BE(group.first, 5);
    header[7] = group.count;
    header.writeUInt16BE(group.lenXor, 8);
    this.#wire.send([header, group.xor.subarray(0, group.maxLen)], remote.port, remote.ip);
    this.stats.paritySent++;
    this.stats.parityBytes += cost;
  }

  // --- receiving ---

  #fromWire(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.#closed) return;
    const remote = this.#remote;
    if (!remote || rinfo.port !== remote.port || rinfo.address !== remote.ip) {
      this.stats.dropped++;
      return;
    }
    if (msg.length === REPORT_LENGTH && msg[0] === REPORT) {
      this.#onReport(msg.readUInt32BE(1), msg.readUInt32BE(5));
      return;
    }
    if (msg.length > 0 && msg[0] === PARITY) {
      const count = msg.length > PARITY_HEADER ? msg[7]! : 0;
      if (count === 0 || count > MAX_FEC_GROUP) this.stats.dropped++;
      else this.#onParity(msg.readUInt32BE(1), { first: msg.readUInt16BE(5), count, lenXor: msg.readUInt16BE(8), xor: Buffer.from(msg.subarray(PARITY_HEADER)) });
      return;
    }
    const rtp = rtpHeader(msg);
    if (!rtp || !this.#protected.has(rtp.pt) || this.#settings.reorderMaxMs <= 0) {
      this.#send(msg);
      return;
    }
    this.#onData(rtp.ssrc, rtp.seq, msg, false);
  }

  #send(payload: Buffer): void {
    const pipe = this.#pipe;
    if (!pipe) return;
    this.#local.send(payload, pipe.port, pipe.ip);
    this.stats.delivered++;
  }

  #stream(ssrc: number, seq: number): RecvStream {
    let s = this.#streams.get(ssrc);
    if (!s) {
      if (this.#streams.size >= MAX_STREAMS) this.#dropOldestStream();
      s = {
        ssrc,
        expect: seq,
        slotSeq: new Int32Array(WINDOW).fill(-1),
        slotPayload: new Array<Buffer | undefined>(WINDOW),
        slotArrivedAt: new Float64Array(WINDOW),
        slotDelivered: new Uint8Array(WINDOW),
        heldCount: 0,
        parities: new Map(),
      };
      this.#streams.set(ssrc, s);
    }
    return s;
  }

  /** Gives the oldest stream's held packets to the PipeTransport and forgets it. */
  #dropOldestStream(): void {
    const [ssrc, s] = this.#streams.entries().next().value!;
    this.#streams.delete(ssrc);
    for (let i = 0; i < WINDOW && s.heldCount > 0; i++) {
      const seq = seqAdd(s.expect, i);
      const slot = seq % WINDOW;
      if (s.slotSeq[slot] === seq && !s.slotDelivered[slot]) {
        this.#send(s.slotPayload[slot]!);
        s.heldCount--;
      }
    }
  }

  #onData(ssrc: number, seq: number, payload: Buffer, rebuilt: boolean): void {
    const s = this.#stream(ssrc, seq);
    const d = seqDiff(seq, s.expect);
    const slot = seq % WINDOW;
    if (s.slotSeq[slot] === seq) {
      this.stats.duplicates++;
      return;
    }
    const now = performance.now();
    this.stats.protectedReceived++;
    if (rebuilt) this.stats.rebuilt++;
    if (d < 0) {
      if (d <= -WINDOW) {
        // Older than anything kept: a stray (or a restarted stream): deliver, nothing to order.
        this.#send(payload);
        return;
      }
      // Its gap was given up: deliver it now (mediasoup takes it as a late packet), once.
      this.#store(s, slot, seq, payload, now);
      s.slotDelivered[slot] = 1;
      this.#send(payload);
      this.stats.late++;
      if (!rebuilt) this.#sampleFill(s, seq, now);
      this.#checkParities(s, seq);
      return;
    }
    // Beyond the window: give up the oldest gaps to make room.
    if (d >= WINDOW - MAX_FEC_GROUP) this.#advance(s, seqAdd(seq, -(WINDOW - 2 * MAX_FEC_GROUP)));
    if (s.heldCount > 0 && !rebuilt) this.#sampleFill(s, seq, now);
    this.#store(s, slot, seq, payload, now);
    s.heldCount++;
    if (seq === s.expect) this.#drain(s);
    else this.stats.held++;
    this.#checkParities(s, seq);
    this.#scheduleHold();
  }

  #store(s: RecvStream, slot: number, seq: number, payload: Buffer, now: number): void {
    s.slotSeq[slot] = seq;
    s.slotPayload[slot] = payload;
    s.slotArrivedAt[slot] = now;
    s.slotDelivered[slot] = 0;
  }

  /** A packet filled a gap late (not rebuilt): how long after the packet that followed it. */
  #sampleFill(s: RecvStream, seq: number, now: number): void {
    for (let i = 1; i <= MAX_FEC_GROUP; i++) {
      const next = seqAdd(seq, i);
      const slot = next % WINDOW;
      if (s.slotSeq[slot] !== next) continue;
      this.#samples.push({ ms: now - s.slotArrivedAt[slot]!, at: now });
      if (this.#samples.length > SAMPLES) this.#samples.shift();
      return;
    }
  }

  /** Delivers the stored packets that follow in order. */
  #drain(s: RecvStream): void {
    for (;;) {
      const slot = s.expect % WINDOW;
      if (s.slotSeq[slot] !== s.expect) return;
      if (!s.slotDelivered[slot]) {
        s.slotDelivered[slot] = 1;
        s.heldCount--;
        this.#send(s.slotPayload[slot]!);
      }
      s.expect = seqAdd(s.expect, 1);
    }
  }

  /** Gives up the gaps before `seq`, delivering what is stored before it. */
  #advance(s: RecvStream, seq: number): void {
    while (seqDiff(seq, s.expect) > 0) {
      const slot = s.expect % WINDOW;
      if (s.slotSeq[slot] === s.expect) {
        if (!s.slotDelivered[slot]) {
          s.slotDelivered[slot] = 1;
          s.heldCount--;
          this.#send(s.slotPayload[slot]!);
          this.stats.releasedAfterHold++;
        }
      } else {
        this.stats.gaveUp++;
      }
      s.expect = seqAdd(s.expect, 1);
    }
  }

  /** When the gap at `s.expect` is given up: the reordering allowance after the packet after it came. */
  #deadline(s: RecvStream): number {
    for (let i = 1; i < WINDOW; i++) {
      const seq = seqAdd(s.expect, i);
      const slot = seq % WINDOW;
      if (s.slotSeq[slot] === seq && !s.slotDelivered[slot]) return s.slotArrivedAt[slot]! + this.allowanceMs;
    }
    return Infinity;
  }

  #scheduleHold(): void {
    let next = Infinity;
    for (const s of this.#streams.values()) if (s.heldCount > 0) next = Math.min(next, this.#deadline(s));
    if (next === Infinity) {
      clearTimeout(this.#holdTimer);
      this.#holdTimer = undefined;
      this.#holdTimerAt = Infinity;
      return;
    }
    if (this.#holdTimer && this.#holdTimerAt <= next) return;
    clearTimeout(this.#holdTimer);
    this.#holdTimerAt = next;
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = undefined;
      this.#holdTimerAt = Infinity;
      if (this.#closed) return;
      this.#releaseDue(performance.now());
      this.#scheduleHold();
    }, Math.max(0, Math.ceil(next - performance.now())));
  }

  /** Gives up every gap whose deadline has passed, delivering what follows it in order. */
  #releaseDue(now: number): void {
    for (const s of this.#streams.values()) {
      while (s.heldCount > 0 && this.#deadline(s) <= now) {
        const slot = s.expect % WINDOW;
        if (s.slotSeq[slot] !== s.expect) this.stats.gaveUp++;
        s.expect = seqAdd(s.expect, 1);
        const before = this.stats.delivered;
        this.#drain(s);
        this.stats.releasedAfterHold += this.stats.delivered - before;
      }
    }
  }

  /** Tells the far end what this side lost of its protected packets since the last report. */
  #report(): void {
    const remote = this.#remote;
    if (this.#closed || !remote || !this.#far.conditioned) return;
    const st = this.stats;
    const now = { lost: Math.max(0, st.rebuilt - st.duplicates) + Math.max(0, st.gaveUp - st.late), received: st.protectedReceived - st.rebuilt };
    const lost = Math.max(0, now.lost - this.#reported.lost);
    const received = Math.max(0, now.received - this.#reported.received);
    this.#reported = now;
    if (lost + received === 0) return;
    const report = Buffer.allocUnsafe(REPORT_LENGTH);
    report[0] = REPORT;
    report.writeUInt32BE(Math.min(lost, 0xffffffff), 1);
    report.writeUInt32BE(Math.min(received, 0xffffffff), 5);
    this.#wire.send(report, remote.port, remote.ip);
  }

  /** The far end's report: the share follows its last LOSS_REPORTS. */
  #onReport(lost: number, received: number): void {
    if (lost + received === 0) return;
    this.#reports.push({ lost, received });
    if (this.#reports.length > LOSS_REPORTS) this.#reports.shift();
    let lostSum = 0;
    let total = 0;
    for (const r of this.#reports) {
      lostSum += r.lost;
      total += r.lost + r.received;
    }
    const full = this.#settings.fecShare;
    this.#share = total < LOSS_MIN_PACKETS ? full : full * Math.min(1, lostSum / total / FULL_SHARE_LOSS);
  }

  #onParity(ssrc: number, p: Parity): void {
    const s = this.#streams.get(ssrc);
    // No packet of this stream came yet (or it is not held here): nothing to rebuild against.
    if (!s || this.#settings.reorderMaxMs <= 0) return;
    const d = seqDiff(p.first, s.expect);
    if (d <= -WINDOW + MAX_FEC_GROUP || d >= WINDOW) {
      this.stats.dropped++;
      return;
    }
    if (!this.#tryRebuild(s, p)) {
      s.parities.set(p.first, p);
      if (s.parities.size > MAX_PENDING_PARITIES) s.parities.delete(s.parities.keys().next().value!);
    }
  }

  /** Parities waiting for more of their group: try them with `seq` now here. */
  #checkParities(s: RecvStream, seq: number): void {
    if (s.parities.size === 0) return;
    for (const [key, p] of s.parities) {
      if (seqDiff(p.first, s.expect) <= -WINDOW + MAX_FEC_GROUP) s.parities.delete(key);
      else {
        const d = seqDiff(seq, p.first);
        if (d >= 0 && d < p.count && this.#tryRebuild(s, p)) s.parities.delete(key);
      }
    }
  }

  /** Rebuilds the one missing packet of a group; true when the parity is used up (nothing or one missing). */
  #tryRebuild(s: RecvStream, p: Parity): boolean {
    let missing: number | undefined;
    for (let i = 0; i < p.count; i++) {
      const seq = seqAdd(p.first, i);
      if (s.slotSeq[seq % WINDOW] === seq) continue;
      if (missing !== undefined) return false;
      missing = seq;
    }
    if (missing === undefined) return true;
    const out = Buffer.from(p.xor);
    let len = p.lenXor;
    for (let i = 0; i < p.count; i++) {
      const seq = seqAdd(p.first, i);
      if (seq === missing) continue;
      const payload = s.slotPayload[seq % WINDOW]!;
      if (payload.length > out.length) {
        // Not a parity of what we hold (or forged): nothing to rebuild.
        this.stats.dropped++;
        return true;
      }
      for (let j = 0; j < payload.length; j++) out[j]! ^= payload[j]!;
      len ^= payload.length & 0xffff;
    }
    const rebuilt = len > 0 && len <= out.length ? out.subarray(0, len) : undefined;
    const header = rebuilt && rtpHeader(rebuilt);
    // What it rebuilt must be the packet it stands for.
    if (!header || header.ssrc !== s.ssrc || header.seq !== missing) {
      this.stats.dropped++;
      return true;
    }
    this.#onData(s.ssrc, missing, rebuilt, true);
    return true;
  }
}

/**
 * What a datagram on a conditioned link carries for the pipe transports: the datagram itself, or
 * nothing for a parity one (for captures and relays that read RTP/RTCP on the wire).
 */
export function conditionedPayload(datagram: Buffer): Buffer | undefined {
  return datagram.length > 0 && datagram[0] === PARITY ? undefined : datagram;
}
