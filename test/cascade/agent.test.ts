/**
 * The cascade inside real region agents (buildAgent with `cascade: { rooms }`): pipe settings from
 * the configuration, peers reached through GEO_SFU_PEER_ROUTES rather than the controlUrl the
 * router lists, and the agent's close telling the other side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Agent } from '../../region-agent/app.ts';
import type { RoomNodeSet } from '../../shared/schemas/index.ts';
import { RoomRouter, WorkerPool } from '../../sfu/index.ts';
import { Agents, agentConfig, freePort } from '../agent/helpers.ts';
import { startFakeRouter, type FakeRouter } from '../agent/fake-router.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { waitUntil } from '../sfu/helpers/rtp.ts';
import { Participant, type AgentNode } from './harness.ts';

describe('cascade in buildAgent()', () => {
  const agents = new Agents();
  let router: FakeRouter;
  const pools: WorkerPool[] = [];
  const rooms = new Map<string, RoomRouter>();
  const started = new Map<string, Agent & { url: string }>();
  const people: Participant[] = [];

  /** Where participants are (the router's view); controlUrls deliberately unreachable. */
  const roomNodes = async (ids: string[]): Promise<Map<string, RoomNodeSet>> =>
    new Map(
      ids.map((id) => [
        id,
        {
          version: 1,
          nodes: [...rooms.entries()]
            .filter(([, r]) => (r.getRoom(id)?.peers.size ?? 0) > 0)
            .map(([nodeId]) => ({ nodeId, region: nodeId.replace(/-\d+$/, ''), controlUrl: 'http://127.0.0.1:1', state: 'alive' as const })),
        },
      ]),
    );

  beforeAll(async () => {
    router = await startFakeRouter({ secret: CLUSTER_SECRET });
    const ports = { 'us-west-1': await freePort(), 'eu-west-1': await freePort() };
    const peerRoutes = JSON.stringify(Object.fromEntries(Object.entries(ports).map(([id, port]) => [id, `http://127.0.0.1:${port}`])));
    for (const [nodeId, region] of [['us-west-1', 'us-west'], ['eu-west-1', 'eu-west']] as const) {
      const pool = await WorkerPool.create({ numWorkers: 1 });
      pools.push(pool);
      const rr = new RoomRouter({ pool, spread: false });
      rooms.set(nodeId, rr);
      // The stub below answers the reconcile poll only (no pushes, no join answers): poll often.
      const config = agentConfig(router.url, { agentId: nodeId, agentRegion: region, agentPort: ports[nodeId], peerRoutes, pipeEnableRtx: false, cascadeReconcileMs: 2_000 });
      started.set(nodeId, await agents.start(config, { cascade: { rooms: rr, roomNodes } }));
    }
    const node = (nodeId: string) => ({ nodeId, region: nodeId.replace(/-\d+$/, ''), rooms: rooms.get(nodeId) }) as unknown as AgentNode;
    people.push(await Participant.join(node('us-west-1'), 'agent-room', 'alice'), await Participant.join(node('eu-west-1'), 'agent-room', 'bruno'));
  }, 30_000);

  afterAll(async () => {
    for (const p of people) p.leave();
    await agents.closeAll();
    for (const r of rooms.values()) r.close();
    for (const p of pools) p.close();
    await router.close();
  });

  it('pipes the room between the two agents through their peer routes, with the configured pipe settings', async () => {
    const us = started.get('us-west-1')!;
    const eu = started.get('eu-west-1')!;
    expect(us.cascade).toBeDefined();
    await waitUntil(() => rooms.get('eu-west-1')!.getRoom('agent-room')!.remotePeers.has('alice') && rooms.get('us-west-1')!.getRoom('agent-room')!.remotePeers.has('bruno'), 10_000, 'piped both ways');
    const pipe = eu.cascade!.link('agent-room', 'us-west-1')!;
    expect(pipe.localEndpoint.srtpParameters).toBeDefined(); // GEO_SFU_PIPE_SRTP default true
    const dump = await pipe.transport.dump();
    expect(dump.rtx).toBe(false); // GEO_SFU_PIPE_RTX=false here
    expect(pipe.transport.tuple.localPort).toBeGreaterThanOrEqual(40_000); // GEO_SFU_RTC_MIN_PORT
    const [people0, people1] = people;
    people0!.startMedia();
    await waitUntil(() => people1!.received(people0!.audio!.id) > 5, 10_000, 'media through the agents');
    people0!.stopMedia();
    const metrics = await (await fetch(`${eu.url}/metrics`)).text();
    expect(metrics).toMatch(/^geo_sfu_agent_pipes\{[^}]*remote_region="us-west"[^}]*state="connected"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^geo_sfu_agent_piped_producers\{[^}]*direction="imported"[^}]*\} [1-9]/m);
    // The pipe conditioner's counters are served (zero here: nothing is lost or reordered on loopback).
    expect(metrics).toMatch(/^geo_sfu_agent_pipe_fec_rebuilt_total\{[^}]*\} 0$/m);
    expect(metrics).toMatch(/^geo_sfu_agent_pipe_reorder_held_total\{[^}]*\} 0$/m);
  });

  it('an agent that closes tells the other side, which closes its pipe', async () => {
    const us = started.get('us-west-1')!;
    const eu = started.get('eu-west-1')!;
    const pipe = us.cascade!.link('agent-room', 'eu-west-1')!;
    await eu.controller.close();
    await waitUntil(() => pipe.closed, 5_000, 'us-west pipe closed');
    expect(rooms.get('us-west-1')!.getRoom('agent-room')!.remotePeers.size).toBe(0);
  });
});
