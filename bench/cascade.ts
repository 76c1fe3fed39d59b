/**
 * Cross-region cascade benchmark (real mediasoup workers, real RTP on loopback, two in-process
 * agents with the cascade control plane):
 *
 * 1. Added latency: one Opus publisher on node A, one subscriber on A (producer → router →
 *    consumer) and one on node B (producer → A's router → pipe, no delay → B's router →
 *    consumer). Each frame's one-way delay is measured at both receivers; the added latency is the
 *    per-frame difference. Target: p50 ≤ 2 ms.
 * 2. Link bytes: one publisher (Opus + VP8) on A and 20 subscribers in the far region, either on
 *    B through the cascade (the stream crosses the link once) or connected directly to A (20
 *    copies cross the link). Bytes are the transports' own counters over the same window: A's
 *    pipe transport (both directions) vs the 20 direct subscribers' transports.
 */
import { Cluster, median, Participant, type AgentNode } from '../test/cascade/harness.ts';
import { sleep, waitUntil } from '../test/sfu/helpers/rtp.ts';
import { RelayMesh } from '../infra/embedded/udp-relay.ts';

export interface CascadeBenchResult {
  /** Frames measured for the latency figures. */
  frames: number;
  localP50Ms: number;
  pipedP50Ms: number;
  /** p50 / p95 of (piped − local) per frame. */
  addedP50Ms: number;
  addedP95Ms: number;
  subscribers: number;
  windowMs: number;
  /** Bytes on the inter-region link with the cascade (A's pipe transport, both directions). */
  cascadeLinkBytes: number;
  /** The same bytes counted by the relay on the link. */
  cascadeRelayBytes: number;
  /** Bytes the far subscribers' direct connections to A carry (their transports, both directions). */
  directLinkBytes: number;
  /** directLinkBytes / cascadeLinkBytes. */
  savingFactor: number;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))] ?? NaN;
};

async function transportBytes(transports: Array<{ getStats(): Promise<Array<{ bytesReceived: number; bytesSent: number }>> }>): Promise<number> {
  let n = 0;
  for (const t of transports) for (const s of await t.getStats()) n += s.bytesReceived + s.bytesSent;
  return n;
}

export async function benchCascade(opts: { quick?: boolean; subscribers?: number } = {}): Promise<CascadeBenchResult> {
  const subscribers = opts.subscribers ?? 20;
  const windowMs = opts.quick ? 2_000 : 5_000;
  const mesh = new RelayMesh(() => '', () => ({ ab: { delayMs: 0 }, ba: { delayMs: 0 } }));
  // The latency room's pipe is direct (no relay hop); the bytes rooms' pipes go through a relay that counts.
  const cluster = new Cluster({ rewrite: (ctx) => (ctx.roomId === 'lat' ? { ip: ctx.ip, port: ctx.port } : mesh.hook(ctx)) });
  const people: Participant[] = [];
  try {
    const a: AgentNode = await cluster.add('node-a', 'us-west');
    const b: AgentNode = await cluster.add('node-b', 'eu-west');

    // --- 1. added latency (pipe with no delay, no relay) ---
    const pub = await Participant.join(a, 'lat', 'pub');
    const near = await Participant.join(a, 'lat', 'near', { publish: false, consume: 'all' });
    const far = await Participant.join(b, 'lat', 'far', { publish: false });
    people.push(pub, near, far);
    await near.waitConsuming([pub.audio!.id, pub.video!.id], 15_000);
    await far.waitConsuming([pub.audio!.id, pub.video!.id], 15_000);
    pub.opus!.start();
    await sleep(windowMs);
    pub.opus!.stop();
    await sleep(300);
    const nearD = near.delays.get(pub.tag) ?? [];
    const farD = far.delays.get(pub.tag) ?? [];
    const n = Math.min(nearD.length, farD.length);
    const added = Array.from({ length: n }, (_, i) => farD[i]! - nearD[i]!);

    // --- 2. link bytes: 20 far subscribers through the cascade vs connected directly ---
    const pub2 = await Participant.join(a, 'bytes-cascade', 'pub');
    const viaCascade: Participant[] = [];
    for (let i = 0; i < subscribers; i++) viaCascade.push(await Participant.join(b, 'bytes-cascade', `sub-${i}`, { publish: false }));
    const pub3 = await Participant.join(a, 'bytes-direct', 'pub');
    const viaDirect: Participant[] = [];
    for (let i = 0; i < subscribers; i++) viaDirect.push(await Participant.join(a, 'bytes-direct', `sub-${i}`, { publish: false, consume: 'all' }));
    people.push(pub2, pub3, ...viaCascade, ...viaDirect);
    for (const s of viaCascade) await s.waitConsuming([pub2.audio!.id, pub2.video!.id], 15_000);
    for (const s of viaDirect) await s.waitConsuming([pub3.audio!.id, pub3.video!.id], 15_000);
    const pipe = a.cascade!.link('bytes-cascade', 'node-b')!;
    const relay = mesh.relay('bytes-cascade', 'node-a', 'node-b')!;
    pub2.startMedia();
    pub3.startMedia();
    await waitUntil(() => viaCascade.every((s) => s.received(pub2.video!.id) > 0) && viaDirect.every((s) => s.received(pub3.video!.id) > 0), 15_000, 'every subscriber receiving');
    const c0 = await transportBytes([pipe.transport]);
    const r0 = relay.stats.ab.bytes + relay.stats.ba.bytes;
    const d0 = await transportBytes(viaDirect.map((s) => s.recvTransport));
    await sleep(windowMs);
    const c1 = await transportBytes([pipe.transport]);
    const r1 = relay.stats.ab.bytes + relay.stats.ba.bytes;
    const d1 = await transportBytes(viaDirect.map((s) => s.recvTransport));
    pub2.stopMedia();
    pub3.stopMedia();

    const cascadeLinkBytes = c1 - c0;
    const directLinkBytes = d1 - d0;
    return {
      frames: n,
      localP50Ms: median(nearD),
      pipedP50Ms: median(farD),
      addedP50Ms: median(added),
      addedP95Ms: pct(added, 0.95),
      subscribers,
      windowMs,
      cascadeLinkBytes,
      cascadeRelayBytes: r1 - r0,
      directLinkBytes,
      savingFactor: directLinkBytes / cascadeLinkBytes,
    };
  } finally {
    for (const p of people) p.leave();
    await cluster.close();
    mesh.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchCascade({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  process.exit(0);
}
