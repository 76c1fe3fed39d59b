import fp from 'fastify-plugin';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { RoomNodeSet } from '../../shared/schemas/index.ts';
import { closeSessionRoute } from '../signaling/close-route.ts';
import { inventoryRoute } from '../signaling/inventory-route.ts';
import { moveRoute } from '../signaling/move-route.ts';
import { SignalingServer } from '../signaling/server.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** socket.io signaling on the agent's HTTP server; null for an agent without an SFU. */
    agentSignaling: SignalingServer | null;
  }
}

export interface SignalingPluginOptions {
  config: GeoSfuConfig;
  now: () => number;
}

/**
 * With an SFU: socket.io signaling on the agent's HTTP server, and the router's signed calls on
 * its sessions (move, close). Its connections end in preClose, before the HTTP server closes.
 */
export const signalingPlugin = fp<SignalingPluginOptions>(
  async (app, { config, now }) => {
    const sfu = app.agentSfu;
    if (!sfu) {
      app.decorate('agentSignaling', null);
      return;
    }
    const cascade = app.agentCascade;
    const signaling = new SignalingServer({
      httpServer: app.server,
      sfu,
      config,
      controller: app.agentController,
      router: app.agentRouter,
      // The join answer's node set: the cascade links the room without asking the router; each
      // link's loss and round trip: how long browsers hold the video it brings.
      ...(cascade
        ? {
            onJoinCurrent: (roomId: string, set: RoomNodeSet | undefined) => cascade.joinAnswered(roomId, set),
            pipedVideoBuffer: (roomId: string, originNodeId: string) => cascade.videoBufferMs(roomId, originNodeId),
          }
        : {}),
      logger: app.log,
      now,
    });
    app.decorate('agentSignaling', signaling);
    const signed = { signaling, clusterSecret: config.clusterSecret, signedRequestWindowMs: config.signedRequestWindowMs, now };
    await app.register(moveRoute, signed);
    await app.register(closeSessionRoute, signed);
    await app.register(inventoryRoute, { ...signed, nodeId: app.agentController.nodeId });
    app.addHook('preClose', async () => signaling.close());
  },
  { name: 'geo-sfu-agent-signaling', dependencies: ['geo-sfu-agent-sfu', 'geo-sfu-agent-control', 'geo-sfu-agent-cascade'] },
);
