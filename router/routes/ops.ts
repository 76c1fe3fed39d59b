import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { MetricsSource } from '../../shared/http.ts';
import type { FastifyInstance } from 'fastify';

export const opsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));

  /** Ready once the registry has been read and the stores answer. */
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await app.registry.refresh();
      return { ok: true };
    } catch (err) {
      return reply.status(503).send({ ok: false, error: (err as Error).message });
    }
  });
};

/** The router's metrics, refreshed from the registry, prober and scaling state at each scrape. */
export function routerMetricsSource(app: FastifyInstance): MetricsSource {
  const { metrics } = app;
  return {
    contentType: metrics.registry.contentType,
    render: async () => {
      const { registry, prober, sessions, rooms } = app;
      const snapshot = registry.snapshot();
      metrics.nodesByState.reset();
      metrics.nodeStress.reset();
      metrics.probeRtt.reset();
      metrics.probeLoss.reset();
      metrics.regionStress.reset();
      metrics.nodeBitrate.reset();
      metrics.cascadeBitrate.reset();
      for (const view of app.scaling.view().regions) if (view.meanStress !== null) metrics.regionStress.set({ region: view.region }, view.meanStress);
      // A link's peer region as the router knows the peer node (registered nodes: a bounded set).
      const regionOf = new Map(snapshot.nodes.map((n) => [n.nodeId, n.region]));
      for (const n of snapshot.nodes) {
        metrics.nodesByState.inc({ region: n.region, state: n.state });
        metrics.nodeStress.set({ region: n.region, node: n.nodeId }, n.stress);
        const probe = prober.stats(n.nodeId);
        if (probe.rttMs !== null) metrics.probeRtt.set({ region: n.region, node: n.nodeId }, probe.rttMs);
        metrics.probeLoss.set({ region: n.region, node: n.nodeId }, probe.loss);
        const media = n.state === 'dead' ? undefined : n.record.heartbeat?.media;
        if (!media) continue;
        metrics.nodeBitrate.set({ region: n.region, node: n.nodeId, direction: 'in' }, media.inBps);
        metrics.nodeBitrate.set({ region: n.region, node: n.nodeId, direction: 'out' }, media.outBps);
        // Summed per peer region: the labels stay bounded by the regions, whatever the rooms and nodes.
        for (const l of media.links) {
          const peerRegion = regionOf.get(l.peerNodeId);
          if (peerRegion === undefined) continue;
          metrics.cascadeBitrate.inc({ region: n.region, node: n.nodeId, peer_region: peerRegion, direction: 'in' }, l.inBps);
          metrics.cascadeBitrate.inc({ region: n.region, node: n.nodeId, peer_region: peerRegion, direction: 'out' }, l.outBps);
        }
      }
      for (const [from, row] of Object.entries(snapshot.interRegion)) {
        for (const [to, stats] of Object.entries(row)) if (stats.rttMs !== null) metrics.interRegionRtt.set({ from, to }, stats.rttMs);
      }
      metrics.sessionLogBufferDepth.set(sessions.bufferDepth());
      metrics.leader.set(app.isLeader() ? 1 : 0);
      metrics.sessionLogDropped.set(sessions.droppedCount());
      metrics.replicaAckShortfalls.set(rooms.replicaAckShortfalls());
      return metrics.registry.metrics();
    },
  };
}
