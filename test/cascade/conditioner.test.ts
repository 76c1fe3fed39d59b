/**
 * The pipe conditioner pair over real UDP: two "pipe transports" (loopback sockets) talk through
 * two conditioners and a lossy, jittery UdpRelay (or a hand-driven far side). The datagrams are
 * RTP: a video stream (payload type 96, protected) and an audio stream (111, not), each packet
 * carrying a counter after its header so the receiving side can check once-and-in-order delivery.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';

import { UdpRelay, type DirectionProfile } from '../../infra/embedded/udp-relay.ts';
import { conditionedPayload, PARITY_HEADER, PipeConditioner, type ConditionerSettings } from '../../region-agent/cascade/conditioner.ts';
import { waitUntil } from '../sfu/helpers/rtp.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const VIDEO_PT = 96;
const AUDIO_PT = 111;
const VIDEO_SSRC = 0x1111_0001;
const AUDIO_SSRC = 0x2222_0002;
const PROTECTED = [VIDEO_PT];

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

/** An RTP packet of `ssrc` numbered `seq`, its payload `len` bytes filled from the number. */
function rtp(ssrc: number, pt: number, seq: number, len: number): Buffer {
  const b = Buffer.alloc(12 + len, seq & 0xff);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(seq * 3000, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}
/** Video packets of mixed sizes (60–1200 bytes), audio ones small. */
const video = (seq: number) => rtp(VIDEO_SSRC, VIDEO_PT, seq, seq % 5 === 0 ? 1188 : 48 + ((seq * 37) % 900));
const audio = (seq: number) => rtp(AUDIO_SSRC, AUDIO_PT, seq, 80 + (seq % 40));

interface Pair {
  a: PipeConditioner;
  b: PipeConditioner;
  pipeA: Awaited<ReturnType<typeof udp>>;
  pipeB: Awaited<ReturnType<typeof udp>>;
  relay: UdpRelay;
}

const conditioner = (settings: ConditionerSettings) => PipeConditioner.open({ ...settings, wireIp: '127.0.0.1', protectedPayloadTypes: PROTECTED });

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

/** A parity datagram as the far end sends it: the XOR of `packets` (consecutive, from `first`). */
function parityOf(ssrc: number, first: number, packets: Buffer[]): Buffer {
  const longest = Math.max(...packets.map((p) => p.length));
  const xor = Buffer.alloc(longest);
  let lenXor = 0;
  for (const p of packets) {
    for (let i = 0; i < p.length; i++) xor[i]! ^= p[i]!;
    lenXor ^= p.length;
  }
  const header = Buffer.alloc(PARITY_HEADER);
  header[0] = 0xd8;
  header.writeUInt32BE(ssrc, 1);
  header.writeUInt16BE(first, 5);
  header[7] = packets.length;
  header.writeUInt16BE(lenXor, 8);
  return Buffer.concat([header, xor]);
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
  it('rebuilds single video losses from parity: every packet of a group with one loss arrives once, byte for byte, in order but for rebuilds that came after the allowance; parity spends its share of the bytes', async () => {
    const settings = { fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300 };
    const [a, b] = await Promise.all([conditioner(settings), conditioner(settings)]);
    open.push(a, b);
    // A hand-driven link: drops one video packet in 33 (a group is a few packets: never two in one).
    const mid = await udp();
    mid.removeAllListeners('message');
    let videoSeen = 0;
    let dropped = 0;
    mid.on('message', (msg, rinfo) => {
      if (rinfo.port !== a.wireEndpoint.port) return;
      if (conditionedPayload(msg) && msg.readUInt32BE(8) === VIDEO_SSRC && videoSeen++ % 33 === 7) {
        dropped++;
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
    await waitUntil(() => order(pipeB.got, VIDEO_SSRC).seen.size >= N, 5_000, 'all video delivered');
    await sleep(100);
    const v = order(pipeB.got, VIDEO_SSRC);
    const share = a.stats.parityBytes / a.stats.sentBytes;
    console.log(`conditioner: ${dropped} of ${N} video dropped, rebuilt ${b.stats.rebuilt}, held ${b.stats.held}, late ${b.stats.late}; parity ${a.stats.paritySent} datagrams, ${a.stats.parityBytes} B for ${a.stats.sentBytes} B (${share.toFixed(3)})`);
    expect(v.seen.size).toBe(N);
    expect(v.duplicates).toBe(0);
    expect(b.stats.rebuilt).toBe(dropped);
    // A gap still open after the allowance went on (mediasoup would ask for it); its rebuild came late, once.
    expect(v.inversions).toBe(b.stats.late);
    expect(b.stats.gaveUp).toBe(b.stats.late);
    for (const { ssrc, seq, msg } of pipeB.got) expect(msg.equals(ssrc === VIDEO_SSRC ? video(seq) : audio(seq)), `${ssrc}/${seq}`).toBe(true);
    // Audio went through, unprotected (the parity budget is a share of all bytes, spent on video).
    expect(order(pipeB.got, AUDIO_SSRC).seen.size).toBe(N / 2);
    // The budget is spent, not hoarded and not overrun: within what the credit may run ahead or behind.
    expect(share).toBeLessThanOrEqual(SHARE + 1_500 / a.stats.sentBytes);
    expect(share).toBeGreaterThanOrEqual(SHARE - 3_000 / a.stats.sentBytes - 0.02);
  });

  it('through a lossy, jittery relay: nothing twice, only unrepairable losses missing, late only past the hold', async () => {
    const { a, b, pipeA, pipeB, relay } = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300 }, { delayMs: 20, jitterMs: 10, loss: 0.02 });
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
    // Recoverable: passed, or alone missing in a group whose parity passed.
    const recoverable = new Set(passed);
    for (const g of groups) {
      const missing = Array.from({ length: g.count }, (_, i) => g.first + i).filter((s) => !passed.has(s));
      if (missing.length === 1) recoverable.add(missing[0]!);
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
    const { a, b, pipeA, pipeB, relay } = await pair({ fecShare: 0, fecGroupMs: 100, reorderMaxMs: 40 }, { delayMs: 15, jitterMs: 10 });
    const N = 600;
    await send(pipeA, a.localEndpoint, N, 2);
    await waitUntil(() => pipeB.got.length >= N + N / 2, 5_000, 'all delivered');
    const v = order(pipeB.got, VIDEO_SSRC);
    const au = order(pipeB.got, AUDIO_SSRC);
    // The relay's timers run late on a busy machine: its longest hold says by how much.
    console.log(`reorder: held ${b.stats.held}, released after hold ${b.stats.releasedAfterHold}, late ${b.stats.late}, allowance ${b.allowanceMs} ms, video inversions ${v.inversions}, audio ${au.inversions}; relay held up to ${relay.stats.ab.heldMaxMs.toFixed(1)} ms (25 ± 10 asked)`);
    expect(v.seen.size).toBe(N);
    expect(v.duplicates).toBe(0);
    expect(b.stats.held).toBeGreaterThan(0); // the relay did reorder
    expect(v.inversions).toBe(b.stats.late);
    // ±10 ms makes a packet at most 20 ms late: the allowance learns that, so few get past it (timer lateness aside).
    expect(b.stats.late).toBeLessThanOrEqual(N / 20);
    // Audio is passed as it comes: the relay's reordering shows.
    expect(au.seen.size).toBe(N / 2);
    expect(au.inversions).toBeGreaterThan(0);
    expect(a.stats.paritySent).toBe(0);
  });

  it('gives up a gap after the reordering allowance, delivers the straggler once; an audio gap is not waited for', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 150 });
    wire(audio(0));
    wire(audio(2));
    for (const n of [0, 1, 3, 4]) wire(video(n));
    await waitUntil(() => pipe.got.length >= 6, 2_000, '3 and 4 after the allowance');
    const [one, three] = [pipe.got.find((g) => g.ssrc === VIDEO_SSRC && g.seq === 1)!, pipe.got.find((g) => g.ssrc === VIDEO_SSRC && g.seq === 3)!];
    console.log(`held ${(three.at - one.at).toFixed(1)} ms for an allowance of ${b.allowanceMs} ms (nothing came late yet)`);
    expect(pipe.got.filter((g) => g.ssrc === AUDIO_SSRC).map((g) => g.seq)).toEqual([0, 2]);
    expect(pipe.got.filter((g) => g.ssrc === VIDEO_SSRC).map((g) => g.seq)).toEqual([0, 1, 3, 4]);
    expect(three.at - one.at).toBeGreaterThanOrEqual(15); // held for the allowance, not passed through
    expect(b.stats).toMatchObject({ gaveUp: 1, releasedAfterHold: 2, held: 2 });
    wire(video(2));
    wire(video(2));
    wire(video(5));
    await waitUntil(() => pipe.got.length >= 8, 2_000, 'straggler and 5');
    await sleep(50);
    expect(pipe.got.filter((g) => g.ssrc === VIDEO_SSRC).map((g) => g.seq)).toEqual([0, 1, 3, 4, 2, 5]);
    expect(b.stats).toMatchObject({ late: 1, duplicates: 1 });
  });

  it('a rebuild after the gap was given up is delivered late, once; the retransmission that follows is dropped', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 150 });
    const group = [10, 11, 12, 13].map(video);
    for (const n of [9, 10, 12, 13]) wire(video(n));
    await waitUntil(() => pipe.got.length >= 4, 2_000, '12 and 13 after the allowance');
    wire(parityOf(VIDEO_SSRC, 10, group));
    await waitUntil(() => pipe.got.length >= 5, 2_000, 'the rebuild');
    wire(video(11));
    await sleep(50);
    expect(pipe.got.map((g) => g.seq)).toEqual([9, 10, 12, 13, 11]);
    expect(pipe.got[4]!.msg.equals(group[1]!)).toBe(true);
    expect(b.stats).toMatchObject({ rebuilt: 1, gaveUp: 1, late: 1, duplicates: 1 });
  });

  it('rebuilds from a parity that came before the rest of its group, and only a packet that is what it stands for', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 2_000 });
    const group = [10, 11, 12, 13].map(video);
    wire(video(9));
    wire(group[0]!);
    wire(parityOf(VIDEO_SSRC, 10, group));
    wire(group[2]!);
    wire(group[3]!);
    await waitUntil(() => pipe.got.length >= 5, 2_000, 'the group, rebuilt');
    expect(pipe.got.map((g) => g.seq)).toEqual([9, 10, 11, 12, 13]);
    expect(pipe.got[2]!.msg.equals(group[1]!)).toBe(true);
    expect(b.stats.rebuilt).toBe(1);
    // A parity that does not match what is held (another stream's packets XORed in) rebuilds nothing.
    const forged = parityOf(VIDEO_SSRC, 20, [video(20), rtp(0x99, VIDEO_PT, 21, 300), video(22)]);
    wire(video(20));
    wire(video(22));
    wire(forged);
    await sleep(100);
    expect(pipe.got.some((g) => g.seq === 21)).toBe(false);
    expect(b.stats.dropped).toBe(1);
  });

  it('the parity share follows the loss the far end reports: full at a lossy link, none once it is clean', async () => {
    const lossy = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300 }, { delayMs: 5, loss: 0.05 });
    const clean = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 300 }, { delayMs: 5 });
    // 6 s of traffic: a dozen reports each; the clean link's share decays by a tenth each.
    await Promise.all([send(lossy.pipeA, lossy.a.localEndpoint, 1_500, 4), send(clean.pipeA, clean.a.localEndpoint, 1_500, 4)]);
    console.log(`share now: lossy ${lossy.a.shareNow.toFixed(3)}, clean ${clean.a.shareNow.toFixed(3)}; parity bytes ${lossy.a.stats.parityBytes} / ${clean.a.stats.parityBytes}`);
    expect(lossy.a.shareNow).toBe(SHARE);
    expect(clean.a.shareNow).toBeLessThan(SHARE * 0.5);
    expect(clean.a.stats.parityBytes).toBeLessThan(lossy.a.stats.parityBytes);
  });

  it('sends no parity to a far end that does not condition', async () => {
    const { a, pipeA, pipeB } = await pair({ fecShare: SHARE, fecGroupMs: 100, reorderMaxMs: 100 }, { delayMs: 5 });
    a.setFar({ conditioned: false });
    await send(pipeA, a.localEndpoint, 200, 1);
    await waitUntil(() => order(pipeB.got, VIDEO_SSRC).seen.size >= 200, 2_000, 'delivered');
    expect(a.stats.paritySent).toBe(0);
    expect(a.stats.protectedSent).toBe(200);
  });

  it('drops bad, truncated and foreign datagrams on the wire socket without throwing, and keeps working', async () => {
    const { b, pipe, wire } = await receiver({ fecShare: SHARE, fecGroupMs: 20, reorderMaxMs: 20 });
    const stranger = await udp();
    for (let n = 0; n < 20; n++) wire(video(n));
    await waitUntil(() => pipe.got.length >= 20, 2_000, 'first 20');
    let rnd = 42;
    const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
    const fuzz: Buffer[] = [Buffer.alloc(0), Buffer.from([0xd8]), Buffer.from([0x80, VIDEO_PT]), Buffer.alloc(PARITY_HEADER, 0xd8), parityOf(VIDEO_SSRC, 60_000, [video(1)])];
    for (let i = 0; i < 400; i++) {
      const len = next() % 48;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = next() & 0xff;
      if (len > PARITY_HEADER && i % 3 === 1) {
        buf[0] = 0xd8;
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
    const { a, b, pipeA, pipeB, relay } = await pair({ fecShare: SHARE, fecGroupMs: 500, reorderMaxMs: 500 }, { delayMs: 50, jitterMs: 40 });
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
