import fp from 'fastify-plugin';
import { clientTls } from '../../shared/tls.ts';
import { NodeRegistry } from '../registry/node-registry.ts';
import { Prober } from '../registry/prober.ts';

/** The node registry (refreshed from its store every GEO_SFU_REGISTRY_REFRESH_MS) and the prober of its nodes. */
export const registryPlugin = fp(
  async (app) => {
    const { config, now } = app;
    const registry = new NodeRegistry({ config, store: app.nodeStore, rooms: app.rooms, now });
    const prober = new Prober({
      intervalMs: config.probeIntervalMs,
      timeoutMs: config.probeTimeoutMs,
      ewmaAlpha: config.rttEwmaAlpha,
      lossWindow: config.lossWindow,
      tls: clientTls(config.tlsCaFile),
      targets: () =>
        registry
          .snapshot()
          .nodes.filter((n) => n.state !== 'dead')
          .map((n) => ({ nodeId: n.nodeId, probeUrl: n.record.registration.probeUrl })),
    });
    app.decorate('registry', registry);
    app.decorate('prober', prober);
    app.addHook('onReady', async () => {
      await registry.start(Math.min(config.registryRefreshMs, config.heartbeatIntervalMs));
      prober.start();
    });
    app.addHook('onClose', async () => {
      await registry.stop();
      await prober.close();
    });
  },
  { name: 'registry', dependencies: ['stores'] },
);
