/**
 * The pipe conditioner on real cascade links: two in-process agents (real mediasoup pipes, SRTP off
 * so the relay can read the RTCP) joined through a relay that loses 3 % and reorders (±10 ms) each
 * way. The same media with the conditioner off and on: far fewer losses reach the far side's piped
 * producers with it (rebuilt from parity, audio's as well as video's), video's reordering is held
 * back, and its sockets go with the link.
 * (The Chromium figures with the default settings: bench/impaired-cascade.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';

import { rtcpNacks, RelayMesh } from '../../infra/embedded/udp-relay.ts';
import { conditionedPayload, type ConditionerSettings } from '../../region-agent/cascade/conditioner.ts';
import { sleep, waitUntil } from '../sfu/helpers/rtp.ts';
import { Cluster, Participant } from './harness.ts';

const ROOM = 'conditioned-room';
const OFF: ConditionerSettings = { fecShare: 0, fecGroupMs: 100, reorderMaxMs: 0, fecMinRttMs: 0 };
/** As by default, but for parity on a link this short (the relay's round trip is a few ms). */
const ON: ConditionerSettings = { fecShare: 0.23, fecGroupMs: 100, reorderMaxMs: 60, fecMinRttMs: 0 };
/** Long enough for some 30 losses each way at 3 %: with fewer, the NACK ratio's noise reaches the bound. */
const WATCH_MS = 12_000;

const teardown: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const t of teardown.splice(0).reverse()) await t();
});

interface Figures {
  /** The far side's piped producers (inbound on its pipe transport): NACKs sent, packets lost (all, and video's). */
  nacks: number;
  lost: number;
  videoLost: number;
  /** RTCP NACKs seen on the relay, and media packets received by the far participant. */
  relayNacks: number;
  received: number;
  /** Datagrams the relay dropped (both ways) in the window: the loss the far side had to deal with. */
  dropped: number;
}

async function run(settings: ConditionerSettings): Promise<{ figures: Figures; cluster: Cluster; mesh: RelayMesh }> {
  const mesh = new RelayMesh(
    (nodeId) => nodeId.replace(/-\d+$/, ''),
    () => ({ ab: { delayMs: 30, jitterMs: 10, loss: 0.03 }, ba: { delayMs: 30, jitterMs: 10, loss: 0.03 } }),
  );
  const cluster = new Cluster({ enableSrtp: false, conditioner: settings, rewrite: mesh.hook });
  teardown.push(() => mesh.close(), () => cluster.close());
  const us = await cluster.add('us-west-1', 'us-west');
  const eu = await cluster.add('eu-west-1', 'eu-west');
  const alice = await Participant.join(us, ROOM, 'alice');
  const bruno = await Participant.join(eu, ROOM, 'bruno', { publish: false });
  teardown.push(() => alice.leave(), () => bruno.leave());
  await bruno.waitConsuming([alice.audio!.id, alice.video!.id], 15_000);
  alice.startMedia();
  await waitUntil(() => bruno.received(alice.video!.id) > 10, 10_000, 'video across the pipe');
  let relayNacks = 0;
  const relay = mesh.relay(ROOM, 'us-west-1', 'eu-west-1')!;
  relay.inspect = (_dir, msg) => {
    const rtcp = conditionedPayload(msg) ?? msg;
    relayNacks += rtcpNacks(rtcp).nacks;
  };
  const inbound = async () => {
    let nacks = 0;
    let lost = 0;
    let videoLost = 0;
    for (const p of eu.cascade!.link(ROOM, 'us-west-1')!.importedProducers.values()) {
      for (const s of await p.getStats()) {
        nacks += s.nackCount ?? 0;
        lost += s.packetsLost ?? 0;
        if (p.kind === 'video') videoLost += s.packetsLost ?? 0;
      }
    }
    return { nacks, lost, videoLost };
  };
  const dropped = () => relay.stats.ab.dropped + relay.stats.ba.dropped;
  const before = { ...(await inbound()), received: bruno.received(alice.audio!.id) + bruno.received(alice.video!.id), dropped: dropped() };
  await sleep(WATCH_MS);
  const after = { ...(await inbound()), received: bruno.received(alice.audio!.id) + bruno.received(alice.video!.id), dropped: dropped() };
  alice.stopMedia();
  return {
    figures: { nacks: after.nacks - before.nacks, lost: after.lost - before.lost, videoLost: after.videoLost - before.videoLost, relayNacks, received: after.received - before.received, dropped: after.dropped - before.dropped },
    cluster,
    mesh,
  };
}

describe('pipe conditioner on real pipes (3 % loss, ±10 ms jitter each way)', () => {
  it('without it, the far side NACKs losses and reordering across the link (video only: piped audio is not NACKed)', async () => {
    const { figures, cluster } = await run(OFF);
    console.log('conditioner off:', figures);
    expect(figures.received).toBeGreaterThan(300);
    expect(figures.lost).toBeGreaterThan(5);
    expect(figures.nacks).toBeGreaterThan(0);
    const imported = [...cluster.nodes.get('eu-west-1')!.cascade!.link(ROOM, 'us-west-1')!.importedProducers.values()];
    const nack = (kind: string) => imported.filter((p) => p.kind === kind).flatMap((p) => p.rtpParameters.codecs.flatMap((c) => (c.rtcpFeedback ?? []).filter((f) => f.type === 'nack' && !f.parameter)));
    expect(nack('audio')).toHaveLength(0);
    expect(nack('video').length).toBeGreaterThan(0);
  }, 60_000);

  it('with it, audio and video losses are rebuilt and video reordering is held back: mediasoup sees few losses, video only where a gap was given up; its sockets close with the link', async () => {
    const { figures, cluster } = await run(ON);
    console.log('conditioner on:', figures);
    const us = cluster.nodes.get('us-west-1')!;
    const eu = cluster.nodes.get('eu-west-1')!;
    const [cu, ce] = [us.cascade!.conditioner(ROOM, 'eu-west-1')!, eu.cascade!.conditioner(ROOM, 'us-west-1')!];
    const stats = eu.cascade!.conditionerStats();
    console.log('far side conditioner:', stats, 'allowance', ce.allowanceMs, 'ms; parity / bytes (origin):', (cu.stats.parityBytes / cu.stats.sentBytes).toFixed(3));
    expect(figures.received).toBeGreaterThan(300);
    expect(stats.rebuilt).toBeGreaterThan(0);
    expect(stats.held).toBeGreaterThan(0);
    // Audio's losses are rebuilt as video's are: mediasoup counts a few of the packets the relay
    // dropped as lost at most (without the conditioner, most of them).
    expect(figures.lost).toBeLessThanOrEqual(Math.max(2, figures.dropped / 10));
    // The video losses it counted are among the gaps the conditioner gave up (the rest it rebuilt
    // or held until they came). The window may cut a gap given up just before it: one of slack.
    expect(figures.videoLost).toBeLessThanOrEqual(stats.gaveUp + 1);
    // The link's sockets and timers go with it; the counters stay.
    await eu.cascade!.close({ notify: true });
    await waitUntil(() => cu.closed && ce.closed, 5_000, 'both conditioners closed');
    expect(eu.cascade!.conditionerStats().rebuilt).toBeGreaterThanOrEqual(stats.rebuilt);
  }, 60_000);

  it('a link torn down and set up again closes its old conditioners: no socket left behind', async () => {
    const mesh = new RelayMesh(() => 'x', () => ({ ab: { delayMs: 5 }, ba: { delayMs: 5 } }));
    const cluster = new Cluster({ enableSrtp: false, conditioner: ON, rewrite: mesh.hook });
    teardown.push(() => mesh.close(), () => cluster.close());
    const us = await cluster.add('us-west-1', 'us-west');
    const eu = await cluster.add('eu-west-1', 'eu-west');
    const a = await Participant.join(us, ROOM, 'a');
    const b = await Participant.join(eu, ROOM, 'b', { publish: false });
    teardown.push(() => a.leave(), () => b.leave());
    const pair = () => [eu.cascade!.conditioner(ROOM, 'us-west-1'), us.cascade!.conditioner(ROOM, 'eu-west-1')] as const;
    const up = () => eu.cascade!.links().some((l) => l.connected) && us.cascade!.links().some((l) => l.connected);
    await waitUntil(() => up() && pair().every((c) => c !== undefined), 10_000, 'link up with conditioners');
    const udpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
    const before = udpHandles();
    for (let i = 0; i < 3; i++) {
      const old = pair();
      // The higher node says it has no link: the lower tears its own down and opens a new one, which replaces the higher's.
      eu.cascade!.handleKick({ roomId: ROOM, fromNodeId: 'us-west-1', toNodeId: 'eu-west-1' });
      await waitUntil(() => old.every((c) => c!.closed) && up() && pair().every((c, j) => c !== undefined && c !== old[j]), 10_000, `relinked (${i + 1})`);
    }
    await sleep(100);
    console.log(`UDP handles: ${before} before three rebuilds, ${udpHandles()} after`);
    expect(udpHandles()).toBe(before);
  }, 40_000);

  it('a link between a node that conditions and one that does not carries media, and no parity goes to the one that does not', async () => {
    const mesh = new RelayMesh(() => 'x', () => ({ ab: { delayMs: 5 }, ba: { delayMs: 5 } }));
    // eu-west-1 (the lower id) opens without the conditioner; us-west-1 runs it and answers the opens.
    const cluster = new Cluster({ enableSrtp: false, rewrite: mesh.hook, conditionerOf: (nodeId) => (nodeId === 'eu-west-1' ? OFF : ON) });
    teardown.push(() => mesh.close(), () => cluster.close());
    const us = await cluster.add('us-west-1', 'us-west');
    const eu = await cluster.add('eu-west-1', 'eu-west');
    const alice = await Participant.join(us, ROOM, 'alice');
    const bruno = await Participant.join(eu, ROOM, 'bruno');
    teardown.push(() => alice.leave(), () => bruno.leave());
    await bruno.waitConsuming([alice.audio!.id, alice.video!.id], 15_000);
    await alice.waitConsuming([bruno.audio!.id, bruno.video!.id], 15_000);
    alice.startMedia();
    bruno.startMedia();
    await waitUntil(() => bruno.received(alice.video!.id) > 20 && alice.received(bruno.video!.id) > 20, 10_000, 'video both ways across the link');
    alice.stopMedia();
    bruno.stopMedia();
    const c = us.cascade!.conditioner(ROOM, 'eu-west-1')!;
    console.log('conditioning side:', c.stats);
    expect(us.cascade!.conditioned).toBe(true);
    expect(eu.cascade!.conditioned).toBe(false);
    expect(eu.cascade!.conditioner(ROOM, 'us-west-1')).toBeUndefined();
    expect(c.stats.protectedSent).toBeGreaterThan(0);
    expect(c.stats.paritySent).toBe(0);
  }, 30_000);
});
