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
 *   type is one of the room's audio or video codecs', given at open) are repaired: retransmissions
 *   (RTX) and RTCP are repair traffic themselves, and pass straight through.
 * - Outgoing, per protected stream: consecutive packets form groups, and each group closes with
 *   a repair symbol over it and the group before (a sliding-window Reed-Solomon code over
 *   GF(2^8), `coefficient`): the far end rebuilds a packet lost in a group from the next symbol
 *   without a round trip, two lost packets from the two symbols over them, and a lost symbol's
 *   packets from the next one. Symbols are paid from a byte budget, a share of all the bytes the
 *   link sends (shared by its streams): a group closes at the first end of a frame (RTP marker
 *   bit) the budget covers its symbol at (every three or four packets of low-rate video at a
 *   share of 0.23), and at the latest `fecGroupMs` after its first packet, borrowing up to one
 *   symbol ahead when the budget is short (a slow stream still gets its repair in time). An audio
 *   group closes on its time only, AUDIO_GROUP_FACTOR × `fecGroupMs`.
 * - The share follows the link: none once its round trip (read from the echo of the loss reports)
 *   is under `fecMinRttMs`, where a retransmission comes back in time. Else it follows the loss:
 *   the far end reports every REPORT_MS how many protected packets it lost on the way and how
 *   many came; over its last minute of reports the share is `fecShare` from FULL_SHARE_LOSS up, in
 *   proportion below it. A link is protected in full until its reports count LOSS_MIN_PACKETS
 *   packets (about 15 s of one camera and microphone), so a link that loses a packet now and then keeps its
 *   protection, and a clean one carries no parity after its first minute.
 * - Incoming: a video stream's packets reach the PipeTransport in sequence order; those
 *   behind a gap wait until the gap fills (the late packet itself, or its rebuild) or for a
 *   reordering allowance (derived from how late packets come on this link, `reorderMaxMs` at
 *   most). So mediasoup's NACK generator, which asks at the first packet past a gap, does not ask
 *   for packets that were only reordered, and the browser behind this SFU does not see the
 *   reordering. A gap still open after the allowance goes to mediasoup, which asks the origin at
 *   once: the packet comes back by whichever is first, its rebuild (within a group's time) or its
 *   retransmission (a round trip), and is delivered when it comes (once; a second copy is dropped).
 *   Waiting for the symbol instead would save the retransmission's bytes but add a group's time
 *   to every loss that the symbols cannot repair. Audio is delivered as it comes (its jitter
 *   buffer reorders, piped audio is not NACKed): a gap is given up at once and a rebuild delivered
 *   late, which the receiver still plays if it comes before the gap's turn, and conceals otherwise.
 * - A repair symbol starts with 0xda, a loss report with 0xd9 (version bits 3: neither RTP nor
 *   RTCP); the far end sends them only when this side runs the conditioner too (`setFar`).
 */
import { createSocket, type Socket } from 'node:dgram';

import { gfInv, gfMul, gfMulAdd, gfScale } from './gf256.ts';

export interface ConditionerSettings {
  /** Repair symbol bytes per byte the link sends, spent on the protected (audio and video) streams; 0 = no FEC. */
  fecShare: number;
  /** A group's repair symbol goes at the latest this long after the group's first packet, ms. */
  fecGroupMs: number;
  /** Longest reordering allowance (a protected packet's hold behind a gap), ms; 0 = no hold (delivered as it comes). */
  reorderMaxMs: number;
  /** Links with a shorter round trip carry no parity (a retransmission comes back in time), ms; 0 = parity on every link. */
  fecMinRttMs: number;
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
  /** Repair symbols (parity) sent and their bytes (header included). */
  paritySent: number;
  parityBytes: number;
  /** Packets rebuilt from repair symbols. */
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
  /** RTP payload types of the protected streams (the room's audio and video codecs, RTX excluded). */
  protectedPayloadTypes: Iterable<number>;
  /** Those of them delivered in sequence order (video); the others (audio) are delivered as they come. */
  orderedPayloadTypes: Iterable<number>;
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

/**
 * Repair symbol: REPAIR ‖ SSRC u32 ‖ first seq u16 ‖ count u8 ‖ repair id u16 ‖ symbol: the sum
 * over GF(2^8) of the `count` packets from `first`, each as (length u16 ‖ packet) padded to the
 * longest and multiplied by its coefficient (see `coefficient`). 0xda: version bits 3, neither
 * RTP nor RTCP (0xd8 was the XOR parity of the conditioner before, which this one does not read).
 */
const REPAIR = 0xda;
export const REPAIR_HEADER = 10;
/** Bytes a packet takes in a symbol beyond its own: its length. */
const LENGTH_PREFIX = 2;
/**
 * Loss report: REPORT ‖ protected packets lost u32 ‖ received u32 (since the last report) ‖ sent at
 * u32 ‖ the far end's last report's sent at u32 ‖ held since u32 (NO_ECHO: none came yet), the
 * times in ms of each side's own clock: the round trip is read from the echo as RTCP's LSR/DLSR.
 * An earlier conditioner sends the first 9 bytes only (no round trip then).
 */
const REPORT = 0xd9;
const REPORT_LENGTH = 21;
const REPORT_LENGTH_NO_RTT = 9;
const NO_ECHO = 0xffffffff;
/** Round trips kept (one per report), and the longest taken as one. */
const RTT_SAMPLES = 9;
const RTT_MAX_MS = 10_000;
/** How often a link's receiver reports its loss, ms. */
export const REPORT_MS = 500;
/** The loss at which the whole `fecShare` is spent (in proportion below it). */
export const FULL_SHARE_LOSS = 0.005;
/** The loss the share follows is the far end's over its last LOSS_REPORTS reports (a minute)... */
const LOSS_REPORTS = 120;
/** ...once they count this many packets: a younger link is protected in full. */
const LOSS_MIN_PACKETS = 1_000;
/** Protected packets this side must have lost of the far end's in its last LOSS_REPORTS reports for the link to count as lossy (libwebrtc adds the round trip to its video delay after 3 NACKed frames in 60 s). */
const LOSSY_MIN_LOST = 3;

/**
 * An audio group stays open this many times fecGroupMs (ten Opus packets at 100 ms): audio's symbols
 * come from the budget the video's do, and one every 100 ms took a fifth of it at 190 kbit/s of
 * video; a rebuild still comes within what the receivers hold audio for, in sync with the video
 * held for a lossy link (pipedVideoBufferMs).
 */
const AUDIO_GROUP_FACTOR = 2;
/** Most packets a repair symbol covers (two groups), and in one group. */
const MAX_REPAIR_SPAN = 64;
const MAX_GROUP = MAX_REPAIR_SPAN / 2;
/** How far the budget may run ahead (a quiet link does not save up for a burst of parity), and behind (one parity borrowed when a group's time is up). */
const CREDIT_CAP = 3_000;
const DEBT_MAX = 1_500;
/** Streams per link tracked at most (each way; a pipe carries a room's producers from one node). */
const MAX_STREAMS = 64;
/** Packets kept per received stream: held, kept for rebuilds, remembered for duplicates. */
const WINDOW = 512;
/** Repair symbols per stream waiting for more of what they cover, at most. */
const MAX_EQUATIONS = 16;
/** Packets missing from them that elimination takes on at most. */
const MAX_UNKNOWNS = 64;
/** Fill delays of gaps (late packets) kept for the allowance: the last ones, within this long. */
const SAMPLES = 64;
const SAMPLE_TTL_MS = 10_000;
/** The allowance before any packet came late on the link. */
const FIRST_ALLOWANCE_MS = 20;

/**
 * The coefficient of packet `seq` in repair symbol `id`: a Cauchy matrix, 1 / (x_id + y_seq) with
 * x = 128 + id mod 128 and y = seq mod 128, so that any k symbols within 128 ids that cover any k
 * lost packets within 128 sequence numbers solve them all (every square sub-matrix of a Cauchy
 * matrix is invertible): the code is MDS, a Reed-Solomon code over a sliding window.
 */
const COEFFICIENTS = new Uint8Array(128 * 128);
for (let x = 0; x < 128; x++) for (let y = 0; y < 128; y++) COEFFICIENTS[(x << 7) | y] = gfInv((0x80 | x) ^ y);
const coefficient = (id: number, seq: number): number => COEFFICIENTS[((id & 0x7f) << 7) | (seq & 0x7f)]!;

/** symbol += coefficient × (length ‖ packet): how a packet enters a repair symbol, and leaves it. */
export function addToSymbol(symbol: Buffer, id: number, seq: number, packet: Buffer): void {
  const c = coefficient(id, seq);
  symbol[0]! ^= gfMul(c, packet.length >> 8);
  symbol[1]! ^= gfMul(c, packet.length & 0xff);
  gfMulAdd(symbol.subarray(LENGTH_PREFIX), packet, c);
}

/** A copy of `b` at least `length` long (zero-padded). */
function grown(b: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  b.copy(out);
  return out;
}

/** Signed distance a − b of two RTP sequence numbers. */
const seqDiff = (a: number, b: number): number => ((((a - b) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
const seqAdd = (a: number, n: number): number => (a + n) & 0xffff;
/** A time (ms) as a report carries it: 32 bits, wrapping. */
const stamp = (ms: number): number => Math.round(ms) >>> 0;

/** The SSRC, sequence number, payload type and marker bit (a video frame's last packet) of an RTP packet (not RTCP), else undefined. */
function rtpHeader(b: Buffer): { ssrc: number; seq: number; pt: number; marker: boolean } | undefined {
  if (b.length < 12 || (b[0]! & 0xc0) !== 0x80) return undefined;
  const pt = b[1]! & 0x7f;
  if (pt >= 64 && pt <= 95) return undefined; // RTCP (192..223 with the marker bit)
  return { ssrc: b.readUInt32BE(8), seq: b.readUInt16BE(2), pt, marker: (b[1]! & 0x80) !== 0 };
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
  if (!Number.isFinite(s.fecMinRttMs) || s.fecMinRttMs < 0) throw new TypeError('fecMinRttMs must be ≥ 0');
  // Rebuilt packets go in order behind their gap: parity is of no use to a side that holds nothing.
  if (s.fecShare > 0 && s.reorderMaxMs <= 0) throw new TypeError('reorderMaxMs must be > 0 when fecShare is (rebuilt packets are delivered in order behind their gap)');
}

/** What the far end of a link does. */
export interface FarEnd {
  /** It runs the conditioner: it takes parity and loss reports. */
  conditioned: boolean;
}

export const conditionerEnabled = (s: ConditionerSettings): boolean => s.fecShare > 0 || s.reorderMaxMs > 0;

/** A link's target moves by this much at least: the median of a jittery link's round trips wanders by a few ms, and each change is told to every browser consuming over it. */
const VIDEO_BUFFER_STEP_MS = 20;

/**
 * How long a browser should hold the video that came over a link before it plays, ms
 * (`RTCRtpReceiver.jitterBufferTarget`; 0: its own choice). A browser behind the edge measures
 * its round trip to the edge, not the link's, so it waits for none of the link's repair: a loss
 * rebuilt a symbol later (a group or two of frames) or retransmitted a link round trip later
 * counts as a freeze once the frame is 150 ms past the buffer's time. `videoBufferMs` covers the
 * symbols; a link round trip covers a retransmission, which comes at most a frame (the gap seen),
 * an allowance and a round trip after the loss: the larger of the two, as libwebrtc adds the
 * round trip it measures to its own delay. Asked for while the link is lossy (`inboundLossy`, as
 * libwebrtc does only after NACKs), and not on a link whose retransmissions are in time anyway (a
 * measured round trip under `fecMinRttMs`). `previousMs`: the link's target until now, kept while
 * the new one is within VIDEO_BUFFER_STEP_MS of it.
 */
export function pipedVideoBufferMs(link: { lossy: boolean; rttMs: number | undefined }, s: { videoBufferMs: number; fecMinRttMs: number }, previousMs = 0): number {
  if (s.videoBufferMs <= 0 || !link.lossy || (link.rttMs !== undefined && link.rttMs < s.fecMinRttMs)) return 0;
  const target = Math.max(s.videoBufferMs, Math.round(link.rttMs ?? 0));
  return previousMs > 0 && Math.abs(target - previousMs) < VIDEO_BUFFER_STEP_MS ? previousMs : target;
}

/** The last LOSS_REPORTS loss reports of one side (lost, received), with their sums kept as they slide. */
class LossWindow {
  readonly #reports: Array<{ lost: number; received: number }> = [];
  /** Packets lost, and lost + received, over the window. */
  lost = 0;
  total = 0;

  add(lost: number, received: number): void {
    this.#reports.push({ lost, received });
    this.lost += lost;
    this.total += lost + received;
    if (this.#reports.length > LOSS_REPORTS) {
      const out = this.#reports.shift()!;
      this.lost -= out.lost;
      this.total -= out.lost + out.received;
    }
  }
}

/** A protected stream's open group (sending). */
/** A protected stream as sent: the repair symbol that closes its open group, and the one after it. */
interface SendStream {
  /** The next repair symbol: its id, the packets it covers (the group before and the open one) and its sum so far. */
  id: number;
  first: number;
  count: number;
  maxLen: number;
  symbol: Buffer;
  /** The open group: its first packet and size, and the next symbol's sum of it. */
  groupFirst: number;
  groupCount: number;
  groupMaxLen: number;
  nextSymbol: Buffer;
  /** How long its groups stay open at most: fecGroupMs, audio's AUDIO_GROUP_FACTOR times that. */
  readonly groupMs: number;
  /** The open group's time is up: it closes as soon as the budget allows, borrowing. */
  due: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** A repair symbol as received, less what is known: the packets it covers still missing, and its rest. */
interface Equation {
  id: number;
  first: number;
  missing: number[];
  rest: Buffer;
}

/** A protected stream as received. */
interface RecvStream {
  readonly ssrc: number;
  /** Held in sequence order behind a gap (video), or delivered as it comes (audio). */
  readonly ordered: boolean;
  /** Next sequence number to deliver. */
  expect: number;
  readonly slotSeq: Int32Array;
  readonly slotPayload: Array<Buffer | undefined>;
  readonly slotArrivedAt: Float64Array;
  readonly slotDelivered: Uint8Array;
  /** Stored, not delivered yet (held behind a gap). */
  heldCount: number;
  /** Repair symbols waiting for more of what they cover (or for each other). */
  equations: Equation[];
  /** Solving now (a rebuilt packet's delivery comes back to solve). */
  solving: boolean;
}

export class PipeConditioner {
  readonly stats: ConditionerStats = emptyConditionerStats();
  readonly #settings: ConditionerSettings;
  readonly #protected: ReadonlySet<number>;
  readonly #ordered: ReadonlySet<number>;
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
  readonly #sendStreams = new Map<number, SendStream>();
  /** Parity bytes the budget allows now (negative: borrowed). */
  #credit = 0;
  /** The far end's last reports, and the share they make (see shareNow). */
  readonly #reports = new LossWindow();
  #share: number;
  /** The link's last round trips (ms), from the far end's echoes of our reports. */
  readonly #rtts: number[] = [];
  /** The far end's last report: its sent-at stamp and when it came (our clock), echoed in ours. */
  #farReport: { sentAt: number; at: number } | undefined;

  // --- receiving ---
  readonly #streams = new Map<number, RecvStream>();
  #holdTimer: NodeJS.Timeout | undefined;
  #holdTimerAt = Infinity;
  #reportTimer: NodeJS.Timeout;
  /** Counters at the last report (lost = rebuilt − duplicates + given up − late, received = protected delivered − rebuilt). */
  #reported = { lost: 0, received: 0 };
  /** This side's last reports (what it lost of the far end's protected packets, and received). */
  readonly #ownReports = new LossWindow();
  /** How late packets came behind their gap (ms), and when. */
  readonly #samples: Array<{ ms: number; at: number }> = [];

  private constructor(local: Socket, wire: Socket, options: ConditionerOptions) {
    this.#settings = { fecShare: options.fecShare, fecGroupMs: options.fecGroupMs, reorderMaxMs: options.reorderMaxMs, fecMinRttMs: options.fecMinRttMs };
    this.#share = options.fecShare;
    this.#protected = new Set(options.protectedPayloadTypes);
    this.#ordered = new Set(options.orderedPayloadTypes);
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

  /**
   * The share of the bytes the link spends on parity now: `fecShare`, scaled down by the far end's
   * loss below FULL_SHARE_LOSS; none once the link's round trip is known to be under `fecMinRttMs`.
   */
  get shareNow(): number {
    const rtt = this.rttMs;
    return rtt !== undefined && rtt < this.#settings.fecMinRttMs ? 0 : this.#share;
  }

  /**
   * Whether the far end's media reaches this side with losses to repair: LOSSY_MIN_LOST or more
   * lost in this side's last minute of reports, or too few packets yet to tell (a young link counts
   * as lossy, as it is protected in full).
   */
  get inboundLossy(): boolean {
    return this.#ownReports.total < LOSS_MIN_PACKETS || this.#ownReports.lost >= LOSSY_MIN_LOST;
  }

  /**
   * The far end's protected packets this side lost on the wire and received there, since the link
   * opened: lost = rebuilt less late originals, plus gaps given up that nothing filled; received =
   * the originals that came. The path's loss, before repair (what the loss reports carry).
   */
  get wireLoss(): { lost: number; received: number } {
    const st = this.stats;
    return { lost: Math.max(0, st.rebuilt - st.duplicates) + Math.max(0, st.gaveUp - st.late), received: st.protectedReceived - st.rebuilt };
  }

  /** The link's round trip (the median of the last RTT_SAMPLES), ms; undefined until the far end echoed a report. */
  get rttMs(): number | undefined {
    if (this.#rtts.length === 0) return undefined;
    const sorted = [...this.#rtts].sort((x, y) => x - y);
    return sorted[sorted.length >> 1];
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
    for (const st of this.#sendStreams.values()) clearTimeout(st.timer);
    this.#sendStreams.clear();
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
    if (repairs) this.#protect(rtp.ssrc, rtp.seq, msg, rtp.marker, this.#ordered.has(rtp.pt));
  }

  /**
   * Adds a protected packet to its stream's repair symbols. A symbol covers the group before and
   * the open one (each packet is in two symbols), so a lost symbol, or two losses in one group,
   * are repaired by the next symbol instead of a round trip.
   */
  #protect(ssrc: number, seq: number, msg: Buffer, marker: boolean, video: boolean): void {
    let st = this.#sendStreams.get(ssrc);
    // Symbols cover consecutive packets: one out of sequence (a late one upstream) goes unprotected.
    if (st && seq !== seqAdd(st.first, st.count)) {
      if (seqDiff(seq, st.first) < st.count) return;
      // A jump ahead (packets lost upstream): the open group gets its symbol if the budget allows, and the stream starts over.
      if (st.groupCount > 0) this.#sendRepair(ssrc, st, this.#credit - this.#repairCost(st) >= -DEBT_MAX);
      this.#dropSendStream(ssrc);
      st = undefined;
    }
    if (!st) {
      if (this.#sendStreams.size >= MAX_STREAMS) this.#dropSendStream(this.#sendStreams.keys().next().value!);
      const symbolLength = LENGTH_PREFIX + Math.max(1500, msg.length);
      const groupMs = video ? this.#settings.fecGroupMs : this.#settings.fecGroupMs * AUDIO_GROUP_FACTOR;
      st = { id: 0, first: seq, count: 0, maxLen: 0, symbol: Buffer.alloc(symbolLength), groupFirst: seq, groupCount: 0, groupMaxLen: 0, nextSymbol: Buffer.alloc(symbolLength), groupMs, due: false, timer: undefined };
      this.#sendStreams.set(ssrc, st);
    }
    if (st.groupCount === 0) {
      const opened = st;
      opened.timer = setTimeout(() => {
        opened.timer = undefined;
        opened.due = true;
        // Between two frames, as a rule: packets of a frame come in a burst.
        if (this.#sendStreams.get(ssrc) === opened) this.#closeIfPaid(ssrc, opened, true);
      }, opened.groupMs);
    }
    const need = LENGTH_PREFIX + msg.length;
    if (need > st.symbol.length) st.symbol = grown(st.symbol, need);
    if (need > st.nextSymbol.length) st.nextSymbol = grown(st.nextSymbol, need);
    addToSymbol(st.symbol, st.id, seq, msg);
    addToSymbol(st.nextSymbol, (st.id + 1) & 0xffff, seq, msg);
    st.count++;
    st.groupCount++;
    st.maxLen = Math.max(st.maxLen, msg.length);
    st.groupMaxLen = Math.max(st.groupMaxLen, msg.length);
    // An audio packet is a frame of its own and its marker bit starts a talkspurt: its groups close on time only.
    this.#closeIfPaid(ssrc, st, marker && video);
  }

  #repairCost(st: SendStream): number {
    return REPAIR_HEADER + LENGTH_PREFIX + st.maxLen;
  }

  /**
   * Closes the open group with its repair symbol at the end of a frame when the budget pays for it
   * (a frame is whole only with its last packet: a symbol right after it repairs a loss anywhere
   * in the frame at once, where one mid-frame leaves the rest of the frame to the next symbol);
   * once the group's time is up, with at most DEBT_MAX borrowed. Otherwise the group goes on
   * growing (up to MAX_GROUP).
   */
  #closeIfPaid(ssrc: number, st: SendStream, endOfFrame: boolean): void {
    const cost = this.#repairCost(st);
    if (st.groupCount >= MAX_GROUP || (endOfFrame && this.#credit >= cost) || (st.due && this.#credit - cost >= -DEBT_MAX)) this.#sendRepair(ssrc, st, true);
  }

  #dropSendStream(ssrc: number): void {
    clearTimeout(this.#sendStreams.get(ssrc)?.timer);
    this.#sendStreams.delete(ssrc);
  }

  /** Closes the open group: sends the symbol when `paid`; the next symbol (the closed group so far) becomes the one to send. */
  #sendRepair(ssrc: number, st: SendStream, paid: boolean): void {
    clearTimeout(st.timer);
    st.timer = undefined;
    st.due = false;
    const remote = this.#remote;
    if (paid && remote && !this.#closed) {
      const cost = this.#repairCost(st);
      this.#credit -= cost;
      const header = Buffer.allocUnsafe(REPAIR_HEADER);
      header[0] = REPAIR;
      header.writeUInt32BE(ssrc, 1);
      header.writeUInt16BE(st.first, 5);
      header[7] = st.count;
      header.writeUInt16BE(st.id, 8);
      this.#wire.send([header, st.symbol.subarray(0, LENGTH_PREFIX + st.maxLen)], remote.port, remote.ip);
      this.stats.paritySent++;
      this.stats.parityBytes += cost;
    }
    // A new buffer for the symbol after next: the one sent is still the socket's (sends are asynchronous).
    const length = st.symbol.length;
    st.id = (st.id + 1) & 0xffff;
    st.first = st.groupFirst;
    st.count = st.groupCount;
    st.maxLen = st.groupMaxLen;
    st.symbol = st.nextSymbol;
    st.nextSymbol = Buffer.alloc(length);
    st.groupFirst = seqAdd(st.first, st.count);
    st.groupCount = 0;
    st.groupMaxLen = 0;
  }

  // --- receiving ---

  #fromWire(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.#closed) return;
    const remote = this.#remote;
    if (!remote || rinfo.port !== remote.port || rinfo.address !== remote.ip) {
      this.stats.dropped++;
      return;
    }
    if (msg[0] === REPORT && (msg.length === REPORT_LENGTH || msg.length === REPORT_LENGTH_NO_RTT)) {
      if (msg.length === REPORT_LENGTH) this.#onEcho(msg.readUInt32BE(9), msg.readUInt32BE(13), msg.readUInt32BE(17));
      this.#onReport(msg.readUInt32BE(1), msg.readUInt32BE(5));
      return;
    }
    if (msg.length > 0 && msg[0] === REPAIR) {
      const count = msg.length > REPAIR_HEADER + LENGTH_PREFIX ? msg[7]! : 0;
      if (count === 0 || count > MAX_REPAIR_SPAN) this.stats.dropped++;
      else this.#onRepair(msg.readUInt32BE(1), msg.readUInt16BE(8), msg.readUInt16BE(5), count, msg.subarray(REPAIR_HEADER));
      return;
    }
    const rtp = rtpHeader(msg);
    if (!rtp || !this.#protected.has(rtp.pt) || this.#settings.reorderMaxMs <= 0) {
      this.#send(msg);
      return;
    }
    this.#onData(this.#stream(rtp.ssrc, rtp.seq, this.#ordered.has(rtp.pt)), rtp.seq, msg, false);
  }

  #send(payload: Buffer): void {
    const pipe = this.#pipe;
    if (!pipe) return;
    this.#local.send(payload, pipe.port, pipe.ip);
    this.stats.delivered++;
  }

  #stream(ssrc: number, seq: number, ordered: boolean): RecvStream {
    let s = this.#streams.get(ssrc);
    if (!s) {
      if (this.#streams.size >= MAX_STREAMS) this.#dropOldestStream();
      s = {
        ssrc,
        ordered,
        expect: seq,
        slotSeq: new Int32Array(WINDOW).fill(-1),
        slotPayload: new Array<Buffer | undefined>(WINDOW),
        slotArrivedAt: new Float64Array(WINDOW),
        slotDelivered: new Uint8Array(WINDOW),
        heldCount: 0,
        equations: [],
        solving: false,
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

  #onData(s: RecvStream, seq: number, payload: Buffer, rebuilt: boolean): void {
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
      this.#known(s, seq, payload);
      return;
    }
    // Beyond the window: give up the oldest gaps to make room.
    if (d >= WINDOW - MAX_REPAIR_SPAN) this.#advance(s, seqAdd(seq, -(WINDOW - 2 * MAX_REPAIR_SPAN)));
    // Audio is not held: its jitter buffer takes packets out of order, and a gap is concealed, not asked for again.
    else if (!s.ordered && d > 0) this.#advance(s, seq);
    if (s.heldCount > 0 && !rebuilt) this.#sampleFill(s, seq, now);
    this.#store(s, slot, seq, payload, now);
    s.heldCount++;
    if (seq === s.expect) this.#drain(s);
    else this.stats.held++;
    this.#known(s, seq, payload);
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
    for (let i = 1; i <= MAX_REPAIR_SPAN; i++) {
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

  /**
   * Tells the far end what this side lost of its protected packets since the last report, and
   * echoes its last report (so each side knows the round trip). Sent even with nothing received:
   * the side that only sends media needs the echo.
   */
  #report(): void {
    if (this.#closed) return;
    const now = this.wireLoss;
    const lost = Math.max(0, now.lost - this.#reported.lost);
    const received = Math.max(0, now.received - this.#reported.received);
    this.#reported = now;
    // Counted here whether or not the far end takes reports: inboundLossy is this side's own.
    if (lost + received > 0) this.#ownReports.add(lost, received);
    const remote = this.#remote;
    if (!remote || !this.#far.conditioned) return;
    const at = performance.now();
    const far = this.#farReport;
    const report = Buffer.allocUnsafe(REPORT_LENGTH);
    report[0] = REPORT;
    report.writeUInt32BE(Math.min(lost, 0xffffffff), 1);
    report.writeUInt32BE(Math.min(received, 0xffffffff), 5);
    report.writeUInt32BE(stamp(at), 9);
    report.writeUInt32BE(far ? far.sentAt : 0, 13);
    report.writeUInt32BE(far ? Math.min(NO_ECHO - 1, Math.round(at - far.at)) : NO_ECHO, 17);
    this.#wire.send(report, remote.port, remote.ip);
  }

  /** A report's stamps: keep the far end's for our echo; a round trip from its echo of ours. */
  #onEcho(sentAt: number, echoOf: number, heldMs: number): void {
    const now = performance.now();
    this.#farReport = { sentAt, at: now };
    if (heldMs === NO_ECHO) return;
    // Signed: the stamps are rounded, so a loopback round trip may come out a millisecond below 0.
    const rtt = (stamp(now) - echoOf - heldMs) | 0;
    if (rtt < -2 || rtt > RTT_MAX_MS) return;
    this.#rtts.push(Math.max(0, rtt));
    if (this.#rtts.length > RTT_SAMPLES) this.#rtts.shift();
  }

  /** The far end's report: the share follows its last LOSS_REPORTS. */
  #onReport(lost: number, received: number): void {
    if (lost + received === 0) return;
    this.#reports.add(lost, received);
    const { lost: lostSum, total } = this.#reports;
    const full = this.#settings.fecShare;
    this.#share = total < LOSS_MIN_PACKETS ? full : full * Math.min(1, lostSum / total / FULL_SHARE_LOSS);
  }

  /** A repair symbol: what it covers that is here comes out of it; what is missing is solved for when it can be. */
  #onRepair(ssrc: number, id: number, first: number, count: number, symbol: Buffer): void {
    const s = this.#streams.get(ssrc);
    // No packet of this stream came yet (or it is not held here): nothing to rebuild against.
    if (!s || this.#settings.reorderMaxMs <= 0) return;
    const d = seqDiff(first, s.expect);
    if (d <= -WINDOW + MAX_REPAIR_SPAN || d >= WINDOW) {
      this.stats.dropped++;
      return;
    }
    const eq: Equation = { id, first, missing: [], rest: Buffer.from(symbol) };
    for (let i = 0; i < count; i++) {
      const seq = seqAdd(first, i);
      const slot = seq % WINDOW;
      if (s.slotSeq[slot] !== seq) eq.missing.push(seq);
      else if (!this.#takeOut(eq, seq, s.slotPayload[slot]!)) return;
    }
    if (eq.missing.length === 0) return;
    s.equations.push(eq);
    if (s.equations.length > MAX_EQUATIONS) s.equations.shift();
    this.#solve(s);
  }

  /** Takes a packet out of a symbol; false (and the symbol dropped) when it cannot be in it: not a symbol of what we hold, or forged. */
  #takeOut(eq: Equation, seq: number, payload: Buffer): boolean {
    if (LENGTH_PREFIX + payload.length > eq.rest.length) {
      this.stats.dropped++;
      return false;
    }
    addToSymbol(eq.rest, eq.id, seq, payload);
    return true;
  }

  /** A packet of the stream came (or was rebuilt): out of the symbols that miss it, and solve when one did. */
  #known(s: RecvStream, seq: number, payload: Buffer): void {
    if (this.#substitute(s, seq, payload)) this.#solve(s);
  }

  /** Takes a packet out of the symbols that miss it (and drops symbols out of the window); true when one missed it. */
  #substitute(s: RecvStream, seq: number, payload: Buffer): boolean {
    if (s.equations.length === 0) return false;
    let changed = false;
    s.equations = s.equations.filter((eq) => {
      if (seqDiff(eq.first, s.expect) <= -WINDOW + MAX_REPAIR_SPAN) return false;
      const at = eq.missing.indexOf(seq);
      if (at < 0) return true;
      changed = true;
      eq.missing.splice(at, 1);
      return this.#takeOut(eq, seq, payload) && eq.missing.length > 0;
    });
    return changed;
  }

  /**
   * Rebuilds what the stream's symbols determine: a symbol missing one packet gives it at once;
   * otherwise Gaussian elimination over all of them (two losses and two symbols that cover both).
   * Each rebuilt packet goes in as if it came, taking itself out of the other symbols.
   */
  #solve(s: RecvStream): void {
    if (s.solving) return;
    s.solving = true;
    try {
      for (;;) {
        const found = solveOne(s.equations);
        if (!found) return;
        const rebuilt = unpack(found.data);
        const header = rebuilt && rtpHeader(rebuilt);
        // What it rebuilt must be the packet it stands for; else the symbols are not of what we hold (or forged).
        if (!header || header.ssrc !== s.ssrc || header.seq !== found.seq) {
          this.stats.dropped++;
          s.equations = [];
          return;
        }
        s.equations = s.equations.filter((eq) => eq.missing.length > 0);
        this.#onData(s, found.seq, rebuilt, true);
        // Out of every symbol even where delivery did not store it (a stray behind the window):
        // each round leaves one unknown fewer, so this ends.
        this.#substitute(s, found.seq, rebuilt);
      }
    } finally {
      s.solving = false;
    }
  }
}

/** (length ‖ packet) as a symbol holds it, or undefined when the length does not fit. */
function unpack(data: Buffer): Buffer | undefined {
  if (data.length < LENGTH_PREFIX) return undefined;
  const len = (data[0]! << 8) | data[1]!;
  return len > 0 && LENGTH_PREFIX + len <= data.length ? Buffer.from(data.subarray(LENGTH_PREFIX, LENGTH_PREFIX + len)) : undefined;
}

/**
 * One packet the symbols determine, with its sequence number; the symbol it came from is used up
 * (its `missing` emptied). A symbol missing one packet gives it directly; else elimination over
 * copies of all of them finds a row left with one unknown.
 */
function solveOne(equations: Equation[]): { seq: number; data: Buffer } | undefined {
  for (const eq of equations) {
    if (eq.missing.length !== 1) continue;
    const seq = eq.missing[0]!;
    eq.missing = [];
    gfScale(eq.rest, gfInv(coefficient(eq.id, seq)));
    return { seq, data: eq.rest };
  }
  if (equations.length < 2) return undefined;
  const unknowns = [...new Set(equations.flatMap((eq) => eq.missing))];
  // Elimination costs equations² × (unknowns + a symbol): bounded by MAX_EQUATIONS and this.
  if (unknowns.length > MAX_UNKNOWNS) return undefined;
  const length = Math.max(...equations.map((eq) => eq.rest.length));
  const rows = equations.map((eq) => ({ coef: unknowns.map((u) => (eq.missing.includes(u) ? coefficient(eq.id, u) : 0)), rest: grown(eq.rest, length) }));
  let rank = 0;
  for (let col = 0; col < unknowns.length && rank < rows.length; col++) {
    const pivot = rows.findIndex((r, i) => i >= rank && r.coef[col] !== 0);
    if (pivot < 0) continue;
    [rows[rank], rows[pivot]] = [rows[pivot]!, rows[rank]!];
    const p = rows[rank]!;
    const inv = gfInv(p.coef[col]!);
    p.coef = p.coef.map((c) => gfMul(c, inv));
    gfScale(p.rest, inv);
    for (const [i, r] of rows.entries()) {
      const f = r.coef[col]!;
      if (i === rank || f === 0) continue;
      r.coef = r.coef.map((c, j) => c ^ gfMul(f, p.coef[j]!));
      gfMulAdd(r.rest, p.rest, f);
    }
    rank++;
  }
  for (const r of rows) {
    const nonzero = r.coef.flatMap((c, j) => (c !== 0 ? [j] : []));
    if (nonzero.length !== 1) continue;
    gfScale(r.rest, gfInv(r.coef[nonzero[0]!]!));
    return { seq: unknowns[nonzero[0]!]!, data: r.rest };
  }
  return undefined;
}

/**
 * What a datagram on a conditioned link carries for the pipe transports: the datagram itself, or
 * nothing for a repair symbol (for captures and relays that read RTP/RTCP on the wire).
 */
export function conditionedPayload(datagram: Buffer): Buffer | undefined {
  return datagram.length > 0 && datagram[0] === REPAIR ? undefined : datagram;
}
