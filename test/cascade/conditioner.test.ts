/**
 * The pipe conditioner pair over real UDP: two "pipe transports" (loopback sockets) talk through
 * two conditioners and a lossy, jittery UdpRelay (or a hand-driven far side). The datagrams are
 * RTP: a video stream (payload type 96, protected, delivered in order) and an audio stream (111,
 * protected, delivered as it comes), each packet
 * carrying a counter after its header so the receiving side can check once-and-in-order delivery.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';

import { UdpRelay, type DirectionProfile } from '../../infra/embedded/udp-relay.ts';
import { addToSymbol, conditionedPayload, PipeConditioner, pipedVideoBufferMs, REPAIR_HEADER, type ConditionerSettings } from '../../region-agent/cascade/conditioner.ts';
import { waitUntil } from '../sfu/helpers/rtp.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const VIDEO_PT = 96;
const AUDIO_PT = 111;
const VIDEO_SSRC = 0x1111_0001;
const AUDIO_SSRC = 0x2222_0002;
const PROTECTED = [VIDEO_PT, AUDIO_PT];
const ORDERED = [VIDEO_PT];

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0).reverse()) o.close();
});

interface Got {
  ssrc: number;
  seq: number;
  at: number;
  msg: Buffer;
}

async function udp(): Promise<Socket & { port: number; got: Got[] }> {
  const s = createSocket('udp4') as Socket & { port: number; got: Got[] };
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  s.port = s.address().port;
  s.got = [];
  s.on('message', (msg) => s.got.push({ ssrc: msg.length >= 12 ? msg.readUInt32BE(8) : -1, seq: msg.length >= 12 ? msg.readUInt16BE(2) : -1, at: performance.now(), msg }));
  open.push(s);
  return s;
}

/** An RTP packet of `ssrc` numbered `seq`, its payload `len` bytes filled from the number; `marker`: a frame's last. */
function rtp(ssrc: number, pt: number, seq: number, len: number, marker = false): Buffer {
  const b = Buffer.alloc(12 + len, seq & 0xff);
  b[0] = 0x80;
  b[1] = pt | (marker ? 0x80 : 0);
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(seq * 3000, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}
/** Video packets of mixed sizes (60–1200 bytes), two to a frame; audio ones small. */
const video = (seq: number) => rtp(VIDEO_SSRC, VIDEO_PT, seq, seq % 5 === 0 ? 1188 : 48 + ((seq * 37) % 900), seq % 2 === 1);
const audio = (seq: number) => rtp(AUDIO_SSRC, AUDIO_PT, seq, 80 + (seq % 40));

interface Pair {
  a: PipeConditioner;
  b: PipeConditioner;
  pipeA: Awaited<ReturnType<typeof udp>>;
  pipeB: Awaited<ReturnType<typeof udp>>;
  relay: UdpRelay;
}

const conditioner = (settings: ConditionerSettings) => PipeConditioner.open({ ...settings, wireIp: '127.0.0.1', protectedPayloadTypes: PROTECTED, orderedPayloadTypes: ORDERED });

/** pipeA → A → relay (a→b) → B → pipeB, and back. */
async function pair(settings: ConditionerSettings, ab: DirectionProfile): Promise<Pair> {
  const [a, b] = await Promise.all([conditioner(settings), conditioner(settings)]);
  open.push(a, b);
  const relay = await UdpRelay.open({ ab, ba: { delayMs: 5 } });
  open.push(relay);
  relay.setTarget('a', a.wireEndpoint);
  relay.setTarget('b', b.wireEndpoint);
  a.connect(relay.facing('a'));
  b.connect(relay.facing('b'));
  const [pipeA, pipeB] = [await udp(), await udp()];
  a.setPipe({ ip: '127.0.0.1', port: pipeA.port });
  b.setPipe({ ip: '127.0.0.1', port: pipeB.port });
  return { a, b, pipeA, pipeB, relay };
}

/** `count` video packets, an audio packet after every second one, 4 datagrams every `everyMs` × 4. */
async function send(from: Socket, to: { ip: string; port: number }, count: number, everyMs: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    from.send(video(n), to.port, to.ip);
    if (n % 2 === 1) from.send(audio(n >> 1), to.port, to.ip);
    if (n % 4 === 3) await sleep(everyMs * 4);
  }
}

/** A stream's delivered sequence numbers: duplicates and inversions (a number after a larger one). */
function order(got: Got[], ssrc: number): { seen: Set<number>; duplicates: number; inversions: number } {
  const seen = new Set<number>();
  let duplicates = 0;
  let inversions = 0;
  let max = -1;
  for (const { seq } of got.filter((g) => g.ssrc === ssrc)) {
    if (seen.has(seq)) duplicates++;
    seen.add(seq);
    if (seq < max) inversions++;
    max = Math.max(max, seq);
  }
  return { seen, duplicates, inversions };
}

/** A repair symbol as the far end sends it: number `id`, over `packets` (consecutive, from `first`). */
function repairOf(ssrc: number, first: number, packets: Buffer[], id = 0): Buffer {
  const longest = Math.max(...packets.map((p) => p.length));
  const symbol = Buffer.alloc(2 + longest);
  for (const [i, p] of packets.entries()) addToSymbol(symbol, id, (first + i) & 0xffff, p);
  const header = Buffer.alloc(REPAIR_HEADER);
  header[0] = 0xda;
  header.writeUInt32BE(ssrc, 1);
  header.writeUInt16BE(first, 5);
  header[7] = packets.length;
  header.writeUInt16BE(id, 8);
  return Buffer.concat([header, symbol]);
}

/** A conditioner fed by a hand-driven far side (`far`), delivering to `pipe`. */
async function receiver(settings: ConditionerSettings) {
  const b = await conditioner(settings);
  open.push(b);
  const far = await udp();
  const pipe = await udp();
  b.connect({ ip: '127.0.0.1', port: far.port });
  b.setPipe({ ip: '127.0.0.1', port: pipe.port });
  const wire = (msg: Buffer) => far.send(msg, b.wireEndpoint.port, '127.0.0.1');
  return { b, far, pipe, wire };
}

const SHARE = 0.25;

describe('pipe conditioner', () => {
  it('rebuilds single losses from parity: every packet of a group with one loss arrives once, byte for byte, video in order but for rebuilds that came after the allowance, audio as it comes; parity spends its share of the bytes', async () => {
    const settings = { fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300, fecMinRttMs: 0 };
    const [a, b] = await Promise.all([conditioner(settings), conditioner(settings)]);
    open.push(a, b);
    // A hand-driven link: drops one video packet in 33 (a group is a few packets: never two in one),
    // and one audio packet in 61 (audio comes at 250 packets/s here: a group is 32 packets, its most).
    const mid = await udp();
    mid.removeAllListeners('message');
    let videoSeen = 0;
    let audioSeen = 0;
    let dropped = 0;
    let audioDropped = 0;
    // The last packet each symbol covers.
    const symbolEnds: number[] = [];
    mid.on('message', (msg, rinfo) => {
      if (rinfo.port !== a.wireEndpoint.port) return;
      if (msg[0] === 0xda && msg.readUInt32BE(1) === VIDEO_SSRC) symbolEnds.push((msg.readUInt16BE(5) + msg[7]! - 1) & 0xffff);
      const ssrc = conditionedPayload(msg) ? msg.readUInt32BE(8) : undefined;
      if ((ssrc === VIDEO_SSRC && videoSeen++ % 33 === 7) || (ssrc === AUDIO_SSRC && audioSeen++ % 61 === 11)) {
        dropped++;
        if (ssrc === AUDIO_SSRC) audioDropped++;
        return;
      }
      mid.send(msg, b.wireEndpoint.port, '127.0.0.1');
    });
    a.connect({ ip: '127.0.0.1', port: mid.port });
    b.connect({ ip: '127.0.0.1', port: mid.port });
    const [pipeA, pipeB] = [await udp(), await udp()];
    a.setPipe({ ip: '127.0.0.1', port: pipeA.port });
    b.setPipe({ ip: '127.0.0.1', port: pipeB.port });
    const N = 800;
    await send(pipeA, a.localEndpoint, N, 2);
    await waitUntil(() => order(pipeB.got, VIDEO_SSRC).seen.size >= N && order(pipeB.got, AUDIO_SSRC).seen.size >= N / 2, 5_000, 'all video and audio delivered');
    await sleep(100);
    const v = order(pipeB.got, VIDEO_SSRC);
    const au = order(pipeB.got, AUDIO_SSRC);
    const share = a.stats.parityBytes / a.stats.sentBytes;
    console.log(
      `conditioner: ${dropped - audioDropped} of ${N} video and ${audioDropped} of ${N / 2} audio dropped, rebuilt ${b.stats.rebuilt}, held ${b.stats.held}, late ${b.stats.late} (audio out of order ${au.inversions}); parity ${a.stats.paritySent} datagrams, ${a.stats.parityBytes} B for ${a.stats.sentBytes} B (${share.toFixed(3)})`,
    );
    expect(v.duplicates + au.duplicates).toBe(0);
    expect(b.stats.rebuilt).toBe(dropped);
    // A video gap still open after the allowance went on (mediasoup would ask for it), an audio gap at once; its rebuild came late, once.
    expect(v.inversions + au.inversions).toBe(b.stats.late);
    expect(b.stats.gaveUp).toBe(b.stats.late);
    expect(au.inversions).toBeGreaterThan(0);
    for (const { ssrc, seq, msg } of pipeB.got) expect(msg.equals(ssrc === VIDEO_SSRC ? video(seq) : audio(seq)), `${ssrc}/${seq}`).toBe(true);
    // Symbols go at the ends of frames (odd packets here), bar one closed by its group's time now and then.
    const atFrameEnd = symbolEnds.filter((seq) => seq % 2 === 1).length;
    console.log(`symbols at a frame's end: ${atFrameEnd} of ${symbolEnds.length}`);
    expect(atFrameEnd).toBeGreaterThanOrEqual(symbolEnds.length * 0.9);
    // The budget is spent, not hoarded and not overrun: within what the credit may run ahead or behind.
    expect(share).toBeLessThanOrEqual(SHARE + 1_500 / a.stats.sentBytes);
    expect(share).toBeGreaterThanOrEqual(SHARE - 3_000 / a.stats.sentBytes - 0.02);
  });

  it('through a lossy, jittery relay: nothing twice, only unrepairable losses missing, late only past the hold', async () => {
    const { a, b, pipeA, pipeB, relay } = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300, fecMinRttMs: 0 }, { delayMs: 20, jitterMs: 10, loss: 0.02 });
    // What crossed the relay: video sequence numbers and parity groups (the relay's loss is random).
    const passed = new Set<number>();
    const groups: Array<{ first: number; count: number }> = [];
    relay.inspect = (dir, msg) => {
      if (dir !== 'ab') return;
      if (!conditionedPayload(msg)) groups.push({ first: msg.readUInt16BE(5), count: msg[7]! });
      else if (msg.readUInt32BE(8) === VIDEO_SSRC) passed.add(msg.readUInt16BE(2));
    };
    const N = 1_000;
    await send(pipeA, a.localEndpoint, N, 2);
    await sleep(500);
    const { seen, duplicates, inversions } = order(pipeB.got, VIDEO_SSRC);
    // Recoverable, at least: passed, or alone missing from a symbol that passed once the others are (the decoder solves more: two symbols for two losses).
    const recoverable = new Set(passed);
    for (let more = true; more; ) {
      more = false;
      for (const g of groups) {
        const missing = Array.from({ length: g.count }, (_, i) => g.first + i).filter((s) => !recoverable.has(s));
        if (missing.length === 1) {
          recoverable.add(missing[0]!);
          more = true;
        }
      }
    }
    console.log(
      `relay: ${relay.stats.ab.dropped} dropped; video delivered ${seen.size}/${N} (recoverable ${recoverable.size}), rebuilt ${b.stats.rebuilt}, held ${b.stats.held}, released after hold ${b.stats.releasedAfterHold}, late ${b.stats.late}, allowance now ${b.allowanceMs} ms, inversions ${inversions}`,
    );
    expect(duplicates).toBe(0);
    for (const s of recoverable) expect(seen.has(s), `video packet ${s}`).toBe(true);
    expect(seen.size).toBeLessThanOrEqual(N);
    // Out of order only what came after its gap was given up.
    expect(inversions).toBeLessThanOrEqual(b.stats.late);
  });

  it('delivers reordered video in order within the hold (no FEC); audio is never held', async () => {
    const { a, b, pipeA, pipeB, relay } = await pair({ fecShare: 0, fecGroupMs: 100, reorderMaxMs: 40, fecMinRttMs: 0 }, { delayMs: 15, jitterMs: 10 });
    const N = 600;
    await send(pipeA, a.localEndpoint, N, 2);
    await waitUntil(() => pipeB.got.length >= N + N / 2, 5_000, 'all delivered');
    const v = order(pipeB.got, VIDEO_SSRC);
    const au = order(pipeB.got, AUDIO_SSRC);
    // The relay's timers run late on a busy machine: its longest hold says by how much.
    console.log(`reorder: held ${b.stats.held}, released after hold ${b.stats.releasedAfterHold}, late ${b.stats.late}, allowance ${b.allowanceMs} ms, video inversions ${v.inversions}, audio ${au.inversions}; relay held up to ${relay.stats.ab.heldMaxMs.toFixed(1)} ms (25 ± 10 asked)`);
    expect(v.seen.size).toBe(N);
    expect(v.duplicates + au.duplicates).toBe(0);
    expect(b.stats.held).toBeGreaterThan(0); // the relay did reorder
    // Out of order: only video that came past its allowance, and audio as the relay reordered it.
    expect(v.inversions + au.inversions).toBe(b.stats.late);
    // ±10 ms makes a packet at most 20 ms late: the allowance learns that, so few get past it (timer lateness aside).
    expect(v.inversions).toBeLessThanOrEqual(N / 20);
    // Audio is passed as it comes: the relay's reordering shows.
    expect(au.seen.size).toBe(N / 2);
    expect(au.inversions).toBeGreaterThan(0);
    expect(a.stats.paritySent).toBe(0);
  });

  it('gives up a gap after the reordering allowance, delivers the straggler once; an audio gap is not waited for', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 150, fecMinRttMs: 0 });
    wire(audio(0));
    wire(audio(2));
    // 3 cannot reach the conditioner before it is sent: it comes out at least an allowance after
    // that, however late this busy process reads its sockets.
    const sentAt = performance.now();
    for (const n of [0, 1, 3, 4]) wire(video(n));
    await waitUntil(() => pipe.got.length >= 6, 2_000, '3 and 4 after the allowance');
    const [one, three] = [pipe.got.find((g) => g.ssrc === VIDEO_SSRC && g.seq === 1)!, pipe.got.find((g) => g.ssrc === VIDEO_SSRC && g.seq === 3)!];
    console.log(`3 delivered ${(three.at - sentAt).toFixed(1)} ms after it was sent (1: ${(one.at - sentAt).toFixed(1)} ms) for an allowance of ${b.allowanceMs} ms (nothing came late yet)`);
    expect(pipe.got.filter((g) => g.ssrc === AUDIO_SSRC).map((g) => g.seq)).toEqual([0, 2]);
    expect(pipe.got.filter((g) => g.ssrc === VIDEO_SSRC).map((g) => g.seq)).toEqual([0, 1, 3, 4]);
    expect(three.at - sentAt).toBeGreaterThanOrEqual(15); // held for the allowance, not passed through
    // Given up: video's 2 after the allowance, audio's 1 at once (nothing held).
    expect(b.stats).toMatchObject({ gaveUp: 2, releasedAfterHold: 2, held: 2 });
    wire(video(2));
    wire(video(2));
    wire(video(5));
    await waitUntil(() => pipe.got.length >= 8, 2_000, 'straggler and 5');
    await sleep(50);
    expect(pipe.got.filter((g) => g.ssrc === VIDEO_SSRC).map((g) => g.seq)).toEqual([0, 1, 3, 4, 2, 5]);
    expect(b.stats).toMatchObject({ late: 1, duplicates: 1 });
  });

  it('two losses under two symbols are both rebuilt, and a lost symbol is made up by the next (each packet is in two)', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 2_000, fecMinRttMs: 0 });
    // The sender's staircase: symbol 7 covers 6..9 and 10..13, symbol 8 covers 10..13 and 14..17.
    const packets = Array.from({ length: 12 }, (_, i) => video(6 + i));
    for (const n of [6, 7, 8, 9, 10, 13]) wire(video(n));
    wire(repairOf(VIDEO_SSRC, 6, packets.slice(0, 8), 7));
    for (const n of [14, 15, 16, 17]) wire(video(n));
    // 11 and 12 lost: symbol 7 alone cannot tell them apart.
    await waitUntil(() => pipe.got.length >= 10, 2_000, 'the rest, once their gap was given up');
    expect(b.stats.rebuilt).toBe(0);
    wire(repairOf(VIDEO_SSRC, 10, packets.slice(4), 8));
    await waitUntil(() => pipe.got.length >= 12, 2_000, 'both rebuilt');
    expect(b.stats.rebuilt).toBe(2);
    // Symbol 9 (over 14..21) lost with 19 in it: symbol 10 (over 18..25) brings 19 back.
    const later = Array.from({ length: 8 }, (_, i) => video(18 + i));
    for (const n of [18, 20, 21, 22, 23, 24, 25]) wire(video(n));
    wire(repairOf(VIDEO_SSRC, 18, later, 10));
    await waitUntil(() => pipe.got.length >= 20, 2_000, 'rebuilt by the next symbol');
    // Every packet once, byte for byte (the rebuilt ones after their gap was given up: late).
    const bySeq = new Map(pipe.got.map((g) => [g.seq, g.msg]));
    expect(bySeq.size).toBe(20);
    for (const p of [...packets, ...later]) expect(bySeq.get(p.readUInt16BE(2))?.equals(p), `packet ${p.readUInt16BE(2)}`).toBe(true);
    expect(b.stats).toMatchObject({ rebuilt: 3, dropped: 0, duplicates: 0 });
  });

  it('a rebuild after the gap was given up is delivered late, once; the retransmission that follows is dropped', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 150, fecMinRttMs: 0 });
    const group = [10, 11, 12, 13].map(video);
    for (const n of [9, 10, 12, 13]) wire(video(n));
    await waitUntil(() => pipe.got.length >= 4, 2_000, '12 and 13 after the allowance');
    wire(repairOf(VIDEO_SSRC, 10, group));
    await waitUntil(() => pipe.got.length >= 5, 2_000, 'the rebuild');
    wire(video(11));
    await sleep(50);
    expect(pipe.got.map((g) => g.seq)).toEqual([9, 10, 12, 13, 11]);
    expect(pipe.got[4]!.msg.equals(group[1]!)).toBe(true);
    expect(b.stats).toMatchObject({ rebuilt: 1, gaveUp: 1, late: 1, duplicates: 1 });
  });

  it('rebuilds from a symbol that came before the rest of what it covers, and only a packet that is what it stands for', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 2_000, fecMinRttMs: 0 });
    const group = [10, 11, 12, 13].map(video);
    wire(video(9));
    wire(group[0]!);
    wire(repairOf(VIDEO_SSRC, 10, group));
    wire(group[2]!);
    wire(group[3]!);
    await waitUntil(() => pipe.got.length >= 5, 2_000, 'the group, rebuilt');
    expect(pipe.got.map((g) => g.seq)).toEqual([9, 10, 11, 12, 13]);
    expect(pipe.got[2]!.msg.equals(group[1]!)).toBe(true);
    expect(b.stats.rebuilt).toBe(1);
    // A symbol that does not match what is held (another stream's packet in it) rebuilds nothing.
    const forged = repairOf(VIDEO_SSRC, 20, [video(20), rtp(0x99, VIDEO_PT, 21, 300), video(22)]);
    wire(video(20));
    wire(video(22));
    wire(forged);
    await sleep(100);
    expect(pipe.got.some((g) => g.seq === 21)).toBe(false);
    expect(b.stats.dropped).toBe(1);
  });

  it('the parity share follows the loss the far end reports: full at a lossy link, none once it is clean', async () => {
    const lossy = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300, fecMinRttMs: 0 }, { delayMs: 5, loss: 0.05 });
    const clean = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300, fecMinRttMs: 0 }, { delayMs: 5 });
    // A young link counts as lossy on the receiving side (too few packets to tell).
    expect([lossy.b.inboundLossy, clean.b.inboundLossy]).toEqual([true, true]);
    // 6 s of traffic: a dozen reports each; the clean link's share decays by a tenth each.
    await Promise.all([send(lossy.pipeA, lossy.a.localEndpoint, 1_500, 4), send(clean.pipeA, clean.a.localEndpoint, 1_500, 4)]);
    console.log(`share now: lossy ${lossy.a.shareNow.toFixed(3)}, clean ${clean.a.shareNow.toFixed(3)}; parity bytes ${lossy.a.stats.parityBytes} / ${clean.a.stats.parityBytes}`);
    expect(lossy.a.shareNow).toBe(SHARE);
    expect(clean.a.shareNow).toBeLessThan(SHARE * 0.5);
    expect(clean.a.stats.parityBytes).toBeLessThan(lossy.a.stats.parityBytes);
    // What the receiving sides lost, as they count it for the browsers behind them (pipedVideoBufferMs).
    expect(lossy.b.inboundLossy).toBe(true);
    expect(clean.b.inboundLossy).toBe(false);
  });

  it('asks the browsers to hold piped video, the larger of the setting and the link round trip, only while the link is lossy, and not on a link shorter than fecMinRttMs', () => {
    const settings = { videoBufferMs: 150, fecMinRttMs: 40 };
    expect(pipedVideoBufferMs({ lossy: true, rttMs: undefined }, settings)).toBe(150);
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 72 }, settings)).toBe(150);
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 224.4 }, settings)).toBe(224);
    // A round trip that wanders a few ms keeps the link's target; a step of 20 ms or more moves it.
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 231 }, settings, 224)).toBe(224);
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 160 }, settings, 150)).toBe(150);
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 176 }, settings, 150)).toBe(176);
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 100 }, settings, 176)).toBe(150);
    expect(pipedVideoBufferMs({ lossy: false, rttMs: 224 }, settings, 224)).toBe(0);
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 39 }, settings)).toBe(0);
    expect(pipedVideoBufferMs({ lossy: false, rttMs: 224 }, settings)).toBe(0);
    expect(pipedVideoBufferMs({ lossy: true, rttMs: 224 }, { ...settings, videoBufferMs: 0 })).toBe(0);
  });

  it('measures the round trip from the echo of its reports, and a link shorter than fecMinRttMs stops its parity', async () => {
    const settings = { fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300, fecMinRttMs: 50 };
    // Before any echo (no far end yet): no round trip, the whole share.
    const fresh = await conditioner(settings);
    open.push(fresh);
    expect(fresh.rttMs).toBeUndefined();
    expect(fresh.shareNow).toBe(SHARE);
    // Relay delays: short 5 + 5 ms, long 80 + 5 ms.
    const short = await pair(settings, { delayMs: 5, loss: 0.02 });
    const long = await pair(settings, { delayMs: 80, loss: 0.02 });
    // 3 s of traffic: the first echo comes back within two reports (1 s).
    await Promise.all([send(short.pipeA, short.a.localEndpoint, 750, 4), send(long.pipeA, long.a.localEndpoint, 750, 4)]);
    const figures = (p: Pair) => `rtt ${p.a.rttMs} ms (far end ${p.b.rttMs}), share ${p.a.shareNow}, parity ${p.a.stats.paritySent}`;
    console.log(`short link: ${figures(short)}; long link: ${figures(long)}`);
    // Each side measures it, the side that only receives video too.
    for (const c of [short.a, short.b]) expect(c.rttMs).toBeLessThan(50);
    for (const c of [long.a, long.b]) {
      expect(c.rttMs).toBeGreaterThanOrEqual(80);
      expect(c.rttMs).toBeLessThan(300);
    }
    expect(short.a.shareNow).toBe(0);
    expect(long.a.shareNow).toBe(SHARE);
    // The short link's parity stopped at its first round trip (about a second in), the long link's went on.
    expect(short.a.stats.paritySent).toBeLessThan(long.a.stats.paritySent);
    const before = short.a.stats.paritySent;
    await send(short.pipeA, short.a.localEndpoint, 100, 4);
    expect(short.a.stats.paritySent).toBe(before);
  });

  it('sends no parity to a far end that does not condition', async () => {
    const { a, pipeA, pipeB } = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 100, fecMinRttMs: 0 }, { delayMs: 5 });
    a.setFar({ conditioned: false });
    await send(pipeA, a.localEndpoint, 200, 1);
    await waitUntil(() => order(pipeB.got, VIDEO_SSRC).seen.size >= 200, 2_000, 'delivered');
    expect(a.stats.paritySent).toBe(0);
    expect(a.stats.protectedSent).toBe(300); // 200 video and 100 audio
  });

  it('drops bad, truncated and foreign datagrams on the wire socket without throwing, and keeps working', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 20, reorderMaxMs: 20, fecMinRttMs: 0 });
    const stranger = await udp();
    for (let n = 0; n < 20; n++) wire(video(n));
    await waitUntil(() => pipe.got.length >= 20, 2_000, 'first 20');
    let rnd = 42;
    const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
    const fuzz: Buffer[] = [Buffer.alloc(0), Buffer.from([0xda]), Buffer.from([0x80, VIDEO_PT]), Buffer.alloc(REPAIR_HEADER + 2, 0xda), repairOf(VIDEO_SSRC, 60_000, [video(1)])];
    for (let i = 0; i < 400; i++) {
      const len = next() % 48;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = next() & 0xff;
      if (len > REPAIR_HEADER && i % 3 === 1) {
        buf[0] = 0xda;
        if (i % 7 === 0) buf.writeUInt32BE(VIDEO_SSRC, 1); // a stream the receiver holds
      }
      fuzz.push(buf);
    }
    for (const [i, f] of fuzz.entries()) {
      stranger.send(f, b.wireEndpoint.port, '127.0.0.1');
      wire(f);
      if (i % 20 === 19) await sleep(2);
    }
    await sleep(150);
    console.log(`fuzz: ${fuzz.length} × 2 datagrams, ${b.stats.dropped} dropped, ${pipe.got.length - 20} delivered`);
    // Every stranger datagram; the far side's that are not RTP pass on to mediasoup, which drops them.
    expect(b.stats.dropped).toBeGreaterThanOrEqual(fuzz.length);
    // Still working (no authentication here: SRTP on the pipe is what rejects a forged payload).
    const before = pipe.got.length;
    for (let n = 20; n < 40; n++) wire(video(n));
    await waitUntil(() => pipe.got.length > before, 2_000, 'more delivered');
  });

  it('close releases both sockets and every timer', async () => {
    const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'Timeout').length;
    await sleep(50);
    const base = handles();
    const { a, b, pipeA, pipeB, relay } = await pair({ fecShare: SHARE, fecGroupMs: 500, reorderMaxMs: 500, fecMinRttMs: 0 }, { delayMs: 50, jitterMs: 40 });
    // Mid-group and mid-hold.
    for (let n = 0; n < 30; n++) pipeA.send(video(n), a.localEndpoint.port, '127.0.0.1');
    await sleep(80);
    expect(handles()).toBeGreaterThan(base);
    a.close();
    b.close();
    a.close();
    relay.close();
    pipeA.close();
    pipeB.close();
    open.splice(0);
    await sleep(20);
    expect(a.closed && b.closed).toBe(true);
    expect(handles()).toBeLessThanOrEqual(base);
  });
});
