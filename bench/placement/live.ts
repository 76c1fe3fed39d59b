import { request } from 'undici';
import type { PlacementStrategyKind } from '../../router/placement/index.ts';
import { FakeNodes } from '../../test/utils/fake-nodes.ts';
import { allocate } from '../../test/utils/http.ts';
import { startRouter, testConfig } from '../../test/utils/router-harness.ts';
import type { LatencyDataset } from './dataset.ts';
import { nodeIdOf, routerStrategy, runPolicy, simContext, type Decision } from './policies.ts';
import type { SimRoom } from './rooms.ts';

/**
 * The same joins and leaves end to end through a live router: startRouter (memory stores) with
 * one fake node per region, each node reporting the data set's inter-region RTTs as its peer RTT
 * and room for 100,000 participants; each join is POST /allocate with the participant's measured
 * RTTs, each leave the admin DELETE of the participant.
 */
export interface LiveRoomDecisions {
  room: string;
  decisions: Decision[];
}

export async function runLive(ds: LatencyDataset, rooms: readonly SimRoom[], strategy: PlacementStrategyKind = 'min-delay'): Promise<LiveRoomDecisions[]> {
  const { catalog } = simContext(ds);
  const config = testConfig('memory', {
    regions: catalog,
    placementStrategy: strategy,
    maxParticipantsPerNode: 100_000,
    allocationTtlMs: 3_600_000,
    // A stalled event loop on a busy machine must not turn a node suspect or dead mid-run.
    suspectAfterMs: 60_000,
    deadAfterMs: 120_000,
  });
  const router = await startRouter(config);
  const nodes = new FakeNodes(router.url, config.clusterSecret);
  try {
    await nodes.start(config.heartbeatIntervalMs);
    for (const region of ds.regions) await nodes.add({ nodeId: nodeIdOf(region), region, maxParticipants: 100_000 });
    for (const [from, row] of Object.entries(ds.interRegionRttMs)) {
      for (const [to, rttMs] of Object.entries(row)) if (from !== to) nodes.setPeerRtt(nodeIdOf(from), nodeIdOf(to), rttMs);
    }
    await nodes.heartbeatAll();
    await router.app.registry.refresh();

    const run = `live-${Date.now().toString(36)}`;
    const out: LiveRoomDecisions[] = [];
    for (const room of rooms) {
      const roomId = `${run}-${room.id}`;
      const decisions: Decision[] = [];
      for (const event of room.events) {
        const p = room.participants[event.participant]!;
        if (event.type === 'join') {
          const res = await allocate(router.url, { roomId, participantId: p.id, latencies: p.measuredRttMs });
          if (res.status !== 200) throw new Error(`POST /allocate ${roomId}/${p.id}: ${res.status} ${JSON.stringify(res.body)}`);
          decisions.push({ participant: p.id, homeRegion: res.body.homeRegion, region: res.body.region });
        } else {
          const res = await request(`${router.url}/rooms/${encodeURIComponent(roomId)}/participants/${encodeURIComponent(p.id)}`, {
            method: 'DELETE',
            headers: { authorization: `Bearer ${config.adminToken}` },
          });
          await res.body.dump();
          if (res.statusCode !== 204) throw new Error(`DELETE ${roomId}/${p.id}: ${res.statusCode}`);
        }
      }
      out.push({ room: room.id, decisions });
    }
    return out;
  } finally {
    await nodes.close();
    await router.close();
  }
}

export interface Disagreement {
  room: string;
  participant: string;
  inProcess: { homeRegion: string; region: string };
  live: { homeRegion: string; region: string } | null;
}

/** Runs `rooms` through the in-process simulator and a live router; every decision must match. */
export async function checkLiveAgreement(ds: LatencyDataset, rooms: readonly SimRoom[], strategy: PlacementStrategyKind = 'min-delay') {
  const ctx = simContext(ds);
  const live = await runLive(ds, rooms, strategy);
  const disagreements: Disagreement[] = [];
  let decisions = 0;
  for (const [k, room] of rooms.entries()) {
    const sim = runPolicy(ctx, room, routerStrategy(strategy)).decisions;
    const got = live[k]!.decisions;
    for (const [i, d] of sim.entries()) {
      decisions++;
      const l = got[i];
      if (!l || l.participant !== d.participant || l.homeRegion !== d.homeRegion || l.region !== d.region) {
        disagreements.push({ room: room.id, participant: d.participant, inProcess: { homeRegion: d.homeRegion, region: d.region }, live: l ? { homeRegion: l.homeRegion, region: l.region } : null });
      }
    }
  }
  return { decisions, disagreements };
}
