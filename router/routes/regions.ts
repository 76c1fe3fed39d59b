import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { nodeOccupancy, RegionsResponse } from '../../shared/schemas/index.ts';

export const regionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/regions',
    { schema: { summary: 'Regions, their nodes (health, load, probe RTT) and the inter-region RTT matrix', response: { 200: RegionsResponse } } },
    async () => regionsView(app),
  );
};

/** GET /regions' answer: regions with their nodes (state, load, probe figures) and the RTT matrix. */
export function regionsView(app: FastifyInstance): RegionsResponse {
  const { config, registry, prober, now } = app;
  const snapshot = registry.snapshot();
  const nowMs = now();
  const regions = config.regions.map((region) => {
    const nodes = snapshot.nodes
      .filter((n) => n.region === region.id)
      .map((n) => {
        const load = n.record.heartbeat?.load ?? { cpu: 0, memory: 0, participants: 0, rooms: 0, transports: 0, producers: 0, consumers: 0, workers: 0 };
        return {
          nodeId: n.nodeId,
          region: n.region,
          state: n.state,
          draining: n.draining,
          cordoned: n.cordoned,
          signalingUrl: n.record.registration.signalingUrl,
          probeUrl: n.record.registration.probeUrl,
          load,
          reserved: n.reserved,
          maxParticipants: n.maxParticipants,
          occupancy: nodeOccupancy(n.reserved, load.participants),
          stress: Math.round(n.stress * 1000) / 1000,
          lastHeartbeatAgoMs: nowMs - n.record.lastHeartbeatMs,
          probe: prober.stats(n.nodeId),
        };
      });
    const healthy = nodes.some((n) => n.state !== 'dead' && !n.draining && !n.cordoned && n.stress < 1);
    return { ...region, healthy, nodes };
  });
  const ids = config.regions.map((r) => r.id);
  const interRegionRttMs = Object.fromEntries(
    ids.map((from) => [from, Object.fromEntries(ids.map((to) => [to, from === to ? 0 : (snapshot.interRegion[from]?.[to]?.rttMs ?? null)]))]),
  );
  return { regions, interRegionRttMs, interRegion: snapshot.interRegion };
}
