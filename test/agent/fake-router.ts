import Fastify, { type FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { Heartbeat, type HeartbeatAck, NodeRegistration, type PeerInfo } from '../../shared/schemas/index.ts';
import { keepRawJsonBody, requireSignature } from '../../shared/signed-http.ts';
import { AJV_OPTIONS } from '../../shared/http.ts';

/**
 * The router's node API as the agent sees it, and nothing more: a real fastify app that verifies
 * signatures with the shared hook, validates bodies against the shared schemas, records every
 * call, and answers with the other registered nodes as peers.
 */
export interface FakeRouter {
  url: string;
  port: number;
  registrations: NodeRegistration[];
  /** Heartbeats with their arrival time (performance.now()). */
  heartbeats: Array<Heartbeat & { receivedAt: number }>;
  deregistrations: Array<{ nodeId: string; receivedAt: number }>;
  /** Requests refused (bad or missing signature, invalid body). */
  refused: Array<{ path: string; statusCode: number; code: string }>;
  /** Currently registered nodes. */
  nodes: Map<string, NodeRegistration>;
  /** Listed to every node besides the registered ones (peers that are dead, silent...). */
  extraPeers: PeerInfo[];
  /** While set, heartbeats are answered with this status (a failing router). */
  failHeartbeatsWith: number | null;
  heartbeatsOf(nodeId: string): Array<Heartbeat & { receivedAt: number }>;
  close(): Promise<void>;
}

export async function startFakeRouter(opts: { secret: string; port?: number; windowMs?: number }): Promise<FakeRouter> {
  const app: FastifyInstance = Fastify({ logger: false, ajv: AJV_OPTIONS });
  keepRawJsonBody(app);
  const state: Omit<FakeRouter, 'url' | 'port' | 'close' | 'heartbeatsOf'> = {
    registrations: [],
    heartbeats: [],
    deregistrations: [],
    refused: [],
    nodes: new Map(),
    extraPeers: [],
    failHeartbeatsWith: null,
  };
  const peersOf = (nodeId: string): PeerInfo[] => [
    ...[...state.nodes.values()]
      .filter((n) => n.nodeId !== nodeId)
      .map((n) => ({ nodeId: n.nodeId, region: n.region, controlUrl: n.controlUrl, probeUrl: n.probeUrl })),
    ...state.extraPeers,
  ];

  app.addHook('preValidation', requireSignature(opts.secret, opts.windowMs ?? 30_000));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const statusCode = err.statusCode ?? 500;
    state.refused.push({ path: req.url, statusCode, code: err.code ?? 'ERROR' });
    return reply.code(statusCode).send({ error: { code: err.code ?? 'ERROR', message: err.message } });
  });

  app.post<{ Body: NodeRegistration }>('/v1/nodes/register', { schema: { body: NodeRegistration } }, async (req): Promise<HeartbeatAck> => {
    state.registrations.push(req.body);
    state.nodes.set(req.body.nodeId, req.body);
    return { known: true, peers: peersOf(req.body.nodeId) };
  });
  app.post<{ Body: Heartbeat }>('/v1/nodes/heartbeat', { schema: { body: Heartbeat } }, async (req, reply) => {
    state.heartbeats.push({ ...req.body, receivedAt: performance.now() });
    if (state.failHeartbeatsWith !== null) return reply.code(state.failHeartbeatsWith).send({ error: { code: 'FAILING', message: 'failing on purpose' } });
    if (!state.nodes.has(req.body.nodeId)) return { known: false, peers: [] } satisfies HeartbeatAck;
    return { known: true, peers: peersOf(req.body.nodeId) } satisfies HeartbeatAck;
  });
  app.post<{ Body: { nodeId: string } }>(
    '/v1/nodes/deregister',
    { schema: { body: Type.Object({ nodeId: Type.String() }, { additionalProperties: false }) } },
    async (req, reply) => {
      state.deregistrations.push({ nodeId: req.body.nodeId, receivedAt: performance.now() });
      state.nodes.delete(req.body.nodeId);
      return reply.code(204).send();
    },
  );

  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  const port = (app.server.address() as { port: number }).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    port,
    heartbeatsOf: (nodeId: string) => state.heartbeats.filter((h) => h.nodeId === nodeId),
    close: async () => {
      await app.close();
    },
  });
}
