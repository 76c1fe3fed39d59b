/**
 * The pipe conditioner pair over real UDP: two "pipe transports" (loopback sockets) talk through
 * two conditioners and a lossy, jittery UdpRelay (or a hand-driven far side). Datagrams carry a
 * counter so the receiving side can check once-and-in-order delivery.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';

import { UdpRelay, type DirectionProfile } from '../../infra/embedded/udp-relay.ts';
import { conditionedPayload, PipeConditioner, type ConditionerSettings } from '../../region-agent/cascade/conditioner.ts';
import { waitUntil } from '../sfu/helpers/rtp.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0).reverse()) o.close();
});

async function udp(): Promise<Socket & { port: number; got: Array<{ n: number; at: number; msg: Buffer }> }> {
  const s = createSocket('udp4') as Socket & { port: number; got: Array<{ n: number; at: number; msg: Buffer }> };
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  s.port = s.address().port;
  s.got = [];
  s.on('message', (msg) => s.got.push({ n: msg.length >= 4 ? msg.readUInt32BE(0) : -1, at: performance.now(), msg }));
  open.push(s);
  return s;
}

/** A datagram numbered `n`, 60..1200 bytes (mixed sizes, as audio and video are). */
function datagram(n: number): Buffer {
  const len = n % 5 === 0 ? 1200 : 60 + ((n * 37) % 900);
  const b = Buffer.alloc(len, n & 0xff);
  b.writeUInt32BE(n, 0);
  return b;
}

interface Pair {
  a: PipeConditioner;
  b: PipeConditioner;
  pipeA: Awaited<ReturnType<typeof udp>>;
  pipeB: Awaited<ReturnType<typeof udp>>;
  relay: UdpRelay;
}

/** pipeA → A → relay (a→b) → B → pipeB, and back. */
async function pair(settings: ConditionerSettings, ab: DirectionProfile): Promise<Pair> {
  const [a, b] = await Promise.all([PipeConditioner.open({ ...settings, wireIp: '127.0.0.1' }), PipeConditioner.open({ ...settings, wireIp: '127.0.0.1' })]);
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

async function send(from: Socket, to: { ip: string; port: number }, count: number, everyMs: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    from.send(datagram(n), to.port, to.ip);
    if (n % 4 === 3) await sleep(everyMs * 4);
  }
}

/** Delivered numbers: duplicates and inversions (a number after a larger one). */
function order(got: Array<{ n: number }>): { seen: Set<number>; duplicates: number; inversions: number } {
  const seen = new Set<number>();
  let duplicates = 0;
  let inversions = 0;
  let max = -1;
  for (const { n } of got) {
    if (seen.has(n)) duplicates++;
    seen.add(n);
    if (n < max) inversions++;
    max = Math.max(max, n);
  }
  return { seen, duplicates, inversions };
}

describe('pipe conditioner', () => {
  it('rebuilds single losses from parity: every datagram of a group with one loss arrives once, in order, byte for byte', async () => {
    const settings = { fecGroup: 8, fecGroupMs: 40, reorderMaxMs: 60 };
    const [a, b] = await Promise.all([PipeConditioner.open({ ...settings, wireIp: '127.0.0.1' }), PipeConditioner.open({ ...settings, wireIp: '127.0.0.1' })]);
    open.push(a, b);
    // A hand-driven link: drops one data datagram in 33 (a group spans at most 4 × 8 = 32, so never two in one group).
    const mid = await udp();
    mid.removeAllListeners('message');
    let data = 0;
    let droppedData = 0;
    mid.on('message', (msg, rinfo) => {
      if (rinfo.port === a.wireEndpoint.port) {
        if (conditionedPayload(msg)) {
          const i = data++;
          if (i % 33 === 7) {
            droppedData++;
            return;
          }
        }
        mid.send(msg, b.wireEndpoint.port, '127.0.0.1');
      }
    });
    a.connect({ ip: '127.0.0.1', port: mid.port });
    b.connect({ ip: '127.0.0.1', port: mid.port });
    const [pipeA, pipeB] = [await udp(), await udp()];
    a.setPipe({ ip: '127.0.0.1', port: pipeA.port });
    b.setPipe({ ip: '127.0.0.1', port: pipeB.port });
    const N = 800;
    await send(pipeA, a.localEndpoint, N, 2);
    await waitUntil(() => pipeB.got.length >= N, 5_000, 'all delivered');
    await sleep(100);
    const { seen, duplicates, inversions } = order(pipeB.got);
    console.log(`conditioner: ${droppedData} of ${N} dropped, rebuilt ${b.stats.rebuilt}, held ${b.stats.held}, late ${b.stats.late}, hold ${b.holdMs} ms, parity ${a.stats.parityBytes} B for ${a.stats.sentBytes} B`);
    expect(seen.size).toBe(N);
    expect(duplicates).toBe(0);
    // In order: the hold (learnt from the rebuilds' delays) covers them; one that came later is counted late.
    expect(inversions).toBe(b.stats.late);
    expect(b.stats.late).toBeLessThanOrEqual(2);
    expect(b.stats.rebuilt).toBe(droppedData);
    // A gap given up (the hold ran out before the parity came) was still filled, late.
    expect(b.stats.gaveUp).toBe(b.stats.late);
    for (const { n, msg } of pipeB.got) expect(msg.equals(datagram(n))).toBe(true);
    // The byte budget: parity within a quarter of the payload.
    expect(a.stats.parityBytes / a.stats.sentBytes).toBeLessThanOrEqual(0.26);
  });

  it('through a lossy, jittery relay: nothing twice, only unrepairable losses missing, late only past the hold', async () => {
    const { a, b, pipeA, pipeB, relay } = await pair({ fecGroup: 8, fecGroupMs: 40, reorderMaxMs: 40 }, { delayMs: 20, jitterMs: 10, loss: 0.02 });
    // What crossed the relay: data seqs and parity groups (the relay's loss is random).
    const passed = new Set<number>();
    const groups: Array<{ first: number; count: number }> = [];
    relay.inspect = (dir, msg) => {
      if (dir !== 'ab') return;
      if (conditionedPayload(msg)) passed.add(msg.readUInt32BE(msg.length - 5));
      else groups.push({ first: msg.readUInt32BE(1), count: msg[5]! });
    };
    const N = 1_000;
    await send(pipeA, a.localEndpoint, N, 2);
    await sleep(300);
    const { seen, duplicates, inversions } = order(pipeB.got);
    // Recoverable: passed, or alone missing in a group whose parity passed.
    const recoverable = new Set(passed);
    for (const g of groups) {
      const missing = Array.from({ length: g.count }, (_, i) => g.first + i).filter((s) => !passed.has(s));
      if (missing.length === 1) recoverable.add(missing[0]!);
    }
    console.log(
      `relay: ${relay.stats.ab.dropped} dropped; delivered ${seen.size}/${N} (recoverable ${recoverable.size}), rebuilt ${b.stats.rebuilt}, held ${b.stats.held}, released after hold ${b.stats.releasedAfterHold}, late ${b.stats.late}, hold now ${b.holdMs} ms, inversions ${inversions}`,
    );
    expect(duplicates).toBe(0);
    // Link sequence = send order here (one sender).
    for (const s of recoverable) expect(seen.has(s), `datagram ${s}`).toBe(true);
    expect(seen.size).toBeLessThanOrEqual(N);
    // Out of order only what came after its gap was given up.
    expect(inversions).toBeLessThanOrEqual(b.stats.late);
  });

  it('delivers reordered input in order within the hold (no FEC)', async () => {
    const { a, b, pipeA, pipeB, relay } = await pair({ fecGroup: 0, fecGroupMs: 40, reorderMaxMs: 40 }, { delayMs: 15, jitterMs: 10 });
    const N = 600;
    await send(pipeA, a.localEndpoint, N, 2);
    await waitUntil(() => pipeB.got.length >= N, 5_000, 'all delivered');
    const { seen, duplicates, inversions } = order(pipeB.got);
    // The relay's timers run late on a busy machine: its longest hold says by how much.
    console.log(`reorder: held ${b.stats.held}, released after hold ${b.stats.releasedAfterHold}, late ${b.stats.late}, hold ${b.holdMs} ms, inversions ${inversions}; relay held up to ${relay.stats.ab.heldMaxMs.toFixed(1)} ms (25 ± 10 asked)`);
    expect(seen.size).toBe(N);
    expect(duplicates).toBe(0);
    expect(b.stats.held).toBeGreaterThan(0); // the relay did reorder
    expect(inversions).toBe(b.stats.late);
    // ±10 ms makes a datagram at most 20 ms late: the hold learns that, so few get past it (timer lateness aside).
    expect(b.stats.late).toBeLessThanOrEqual(N / 20);
    expect(a.stats.paritySent).toBe(0);
  });

  it('releases what follows a loss that cannot be rebuilt after the hold, delivers the straggler once', async () => {
    const b = await PipeConditioner.open({ fecGroup: 8, fecGroupMs: 40, reorderMaxMs: 30, wireIp: '127.0.0.1' });
    open.push(b);
    const far = await udp();
    const pipeB = await udp();
    b.connect({ ip: '127.0.0.1', port: far.port });
    b.setPipe({ ip: '127.0.0.1', port: pipeB.port });
    const wire = (n: number) => {
      const t = Buffer.alloc(5);
      t.writeUInt32BE(n, 0);
      t[4] = 0xd7;
      far.send(Buffer.concat([datagram(n), t]), b.wireEndpoint.port, '127.0.0.1');
    };
    for (const n of [0, 1, 3, 4]) wire(n);
    await waitUntil(() => pipeB.got.length >= 4, 2_000, '3 and 4 after the hold');
    const waited = pipeB.got[2]!.at - pipeB.got[1]!.at;
    console.log(`held ${waited.toFixed(1)} ms for a hold of ${b.holdMs} ms`);
    expect(pipeB.got.map((g) => g.n)).toEqual([0, 1, 3, 4]);
    expect(waited).toBeGreaterThanOrEqual(20); // held (30 ms: no gap filled yet on this link), not passed through
    expect(b.stats).toMatchObject({ gaveUp: 1, releasedAfterHold: 2, held: 2 });
    wire(2);
    wire(2);
    wire(5);
    await waitUntil(() => pipeB.got.length >= 6, 2_000, 'straggler and 5');
    await sleep(50);
    expect(pipeB.got.map((g) => g.n)).toEqual([0, 1, 3, 4, 2, 5]);
    expect(b.stats).toMatchObject({ late: 1, duplicates: 1 });
  });

  it('drops bad, truncated and foreign datagrams on the wire socket without throwing, and keeps working', async () => {
    const b = await PipeConditioner.open({ fecGroup: 4, fecGroupMs: 20, reorderMaxMs: 20, wireIp: '127.0.0.1' });
    open.push(b);
    const far = await udp();
    const stranger = await udp();
    const pipeB = await udp();
    b.connect({ ip: '127.0.0.1', port: far.port });
    b.setPipe({ ip: '127.0.0.1', port: pipeB.port });
    const wire = (n: number) => {
      const t = Buffer.alloc(5);
      t.writeUInt32BE(n, 0);
      t[4] = 0xd7;
      far.send(Buffer.concat([datagram(n), t]), b.wireEndpoint.port, '127.0.0.1');
    };
    for (let n = 0; n < 20; n++) wire(n);
    await waitUntil(() => pipeB.got.length >= 20, 2_000, 'first 20');
    let rnd = 42;
    const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
    const fuzz: Buffer[] = [Buffer.alloc(0), Buffer.from([0xd7]), Buffer.from([0xd8]), Buffer.from([0, 0, 0, 0, 0xd7]), Buffer.from([0xd8, 0, 0, 0, 0, 0, 0, 0, 0xd8])];
    for (let i = 0; i < 400; i++) {
      const len = next() % 48;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = next() & 0xff;
      if (len > 0 && i % 3 === 0) buf[len - 1] = 0xd7;
      if (len > 9 && i % 3 === 1) {
        buf[0] = 0xd8;
        buf[len - 1] = 0xd8;
        if (i % 7 === 0) buf.writeUInt32BE(18, 1); // a group the receiver holds part of
      }
      fuzz.push(buf);
    }
    for (const [i, f] of fuzz.entries()) {
      stranger.send(f, b.wireEndpoint.port, '127.0.0.1');
      far.send(f, b.wireEndpoint.port, '127.0.0.1');
      if (i % 20 === 19) await sleep(2);
    }
    await sleep(150);
    console.log(`fuzz: ${fuzz.length} × 2 datagrams, ${b.stats.dropped} dropped, ${pipeB.got.length - 20} delivered`);
    // Every stranger datagram, and the far side's that are not well formed or out of the window.
    expect(b.stats.dropped).toBeGreaterThanOrEqual(fuzz.length);
    // Still working (no authentication here: SRTP on the pipe is what rejects a forged payload).
    const before = pipeB.got.length;
    for (let n = 20; n < 40; n++) wire(n);
    await waitUntil(() => pipeB.got.filter((g) => g.n >= 20 && g.n < 40).length > 0 && pipeB.got.length > before, 2_000, 'more delivered');
  });

  it('close releases both sockets and every timer', async () => {
    const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'Timeout').length;
    await sleep(50);
    const base = handles();
    const { a, b, pipeA, pipeB, relay } = await pair({ fecGroup: 8, fecGroupMs: 500, reorderMaxMs: 500 }, { delayMs: 50, jitterMs: 40 });
    // Mid-group and mid-hold.
    for (let n = 0; n < 30; n++) pipeA.send(datagram(n), a.localEndpoint.port, '127.0.0.1');
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
