import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { io, type Socket } from 'socket.io-client';
import { type Agent, buildAgent } from '../../region-agent/app.ts';
import { AgentSfu } from '../../region-agent/sfu.ts';
import type { GeoSfuConfig, TokenKey } from '../../shared/config/index.ts';
import { AJV_OPTIONS } from '../../shared/http.ts';
import { type AllocateSfuResponse, Heartbeat, type HeartbeatAck, NodeRegistration, ParticipantEvent, type ParticipantEventAnswer, TrackEvent } from '../../shared/schemas/index.ts';
import { keepRawJsonBody, requireSignature } from '../../shared/signed-http.ts';
import { type Ack, PROTOCOL_VERSION, type RequestName, type RequestPayload, type ResponseData } from '../../shared/signaling.ts';
import { type JoinClaims, type Permissions, signJoinToken } from '../../shared/tokens.ts';
import { agentConfig } from '../agent/helpers.ts';

export { waitFor } from '../agent/helpers.ts';

export const TOKEN_KEY: TokenKey = { kid: 'k1', secret: randomBytes(24).toString('hex') };

/** The router's node API, with the participant-event route: records what the agents report. */
export interface SignalingRouter {
  url: string;
  participantEvents: Array<ParticipantEvent & { receivedAt: number }>;
  /** Track reports (published, unpublished), in arrival order. */
  trackEvents: TrackEvent[];
  heartbeats: Heartbeat[];
  registrations: NodeRegistration[];
  refused: Array<{ path: string; statusCode: number }>;
  /** Returned in every heartbeat ack. */
  alerts: NonNullable<HeartbeatAck['alerts']>;
  /** The answer to a `joined` report; null: 503 (the router cannot tell, e.g. Redis away). */
  joinAnswer: ParticipantEventAnswer | null;
  close(): Promise<void>;
}

export async function startSignalingRouter(secret: string): Promise<SignalingRouter> {
  const app: FastifyInstance = Fastify({ logger: false, ajv: AJV_OPTIONS });
  keepRawJsonBody(app);
  const state = {
    participantEvents: [] as SignalingRouter['participantEvents'],
    trackEvents: [] as TrackEvent[],
    heartbeats: [] as Heartbeat[],
    registrations: [] as NodeRegistration[],
    refused: [] as SignalingRouter['refused'],
    alerts: [] as NonNullable<HeartbeatAck['alerts']>,
    joinAnswer: { current: true } as ParticipantEventAnswer | null,
  };
  app.addHook('preValidation', requireSignature(secret, 30_000));
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    state.refused.push({ path: req.url, statusCode: err.statusCode ?? 500 });
    return reply.code(err.statusCode ?? 500).send({ error: { code: 'ERROR', message: err.message } });
  });
  app.post<{ Body: NodeRegistration }>('/v1/nodes/register', { schema: { body: NodeRegistration } }, async (req): Promise<HeartbeatAck> => {
    state.registrations.push(req.body);
    return { known: true, peers: [] };
  });
  app.post<{ Body: Heartbeat }>('/v1/nodes/heartbeat', { schema: { body: Heartbeat } }, async (req): Promise<HeartbeatAck> => {
    state.heartbeats.push(req.body);
    return { known: true, peers: [], alerts: state.alerts };
  });
  app.post('/v1/nodes/deregister', { schema: { body: Type.Object({ nodeId: Type.String() }) } }, async (_req, reply) => reply.code(204).send());
  app.post<{ Body: ParticipantEvent }>('/v1/nodes/participant-event', { schema: { body: ParticipantEvent } }, async (req, reply) => {
    state.participantEvents.push({ ...req.body, receivedAt: performance.now() });
    if (req.body.event === 'left') return reply.code(204).send();
    if (state.joinAnswer === null) return reply.code(503).send({ error: { code: 'DEPENDENCY_UNAVAILABLE', message: 'Redis is away' } });
    return reply.code(200).send(state.joinAnswer);
  });
  app.post<{ Body: TrackEvent }>('/v1/nodes/track-event', { schema: { body: TrackEvent } }, async (req, reply) => {
    state.trackEvents.push(req.body);
    return reply.code(204).send();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return Object.assign(state, { url: `http://127.0.0.1:${port}`, close: () => app.close() });
}

export function signalingConfig(routerUrl: string, overrides: Partial<GeoSfuConfig> = {}): GeoSfuConfig {
  return agentConfig(routerUrl, {
    agentId: 'west-1',
    tokenKeys: [TOKEN_KEY],
    sfuWorkers: 1,
    rtcListenIp: '127.0.0.1',
    heartbeatIntervalMs: 200,
    resumeGraceMs: 1_000,
    // An agent in the test's process counts that whole process's CPU as its own (the router, the
    // other agents, the test itself): on a loaded machine it would report itself overloaded and
    // placement would refuse it. These tests are not about load (test/agent/ and placement are).
    agentCpuCores: 64,
    ...overrides,
  });
}

export type RunningAgent = Agent & { url: string; sfu: AgentSfu; config: GeoSfuConfig };

/** Agents with a real SFU (one worker each); all closed by closeAll(). */
export class SfuAgents {
  readonly #started: RunningAgent[] = [];

  async start(config: GeoSfuConfig): Promise<RunningAgent> {
    const sfu = await AgentSfu.create(config);
    const agent = await buildAgent({ config, sfu });
    const running = { ...agent, sfu, config, url: await agent.controller.start() };
    this.#started.push(running);
    return running;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#started.splice(0).map((a) => a.controller.close()));
  }
}

let seq = 0;
export function token(claims: Partial<JoinClaims> = {}, key: TokenKey = TOKEN_KEY): { token: string; claims: JoinClaims } {
  const now = Math.floor(Date.now() / 1000);
  const full: JoinClaims = { aid: `alloc-${++seq}`, room: 'room-1', sub: `p${seq}`, region: 'us-west', node: 'west-1', iat: now, exp: now + 60, ...claims };
  return { token: signJoinToken(key, full), claims: full };
}

/** A VP8 producer's RTP parameters (no media needs to flow for the signaling). */
export const vp8Parameters = (ssrc: number) => ({
  codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }],
  encodings: [{ ssrc }],
});

/** What /allocate would answer for a participant placed on `agentUrl`, with a join token of TOKEN_KEY (no router needed). */
export function directAllocation(agentUrl: string, roomId: string, participantId: string, perm?: Permissions): AllocateSfuResponse {
  const { token: joinToken, claims } = token({ room: roomId, sub: participantId, ...(perm ? { perm } : {}) });
  return {
    mode: 'sfu',
    allocationId: claims.aid,
    roomId,
    participantId,
    homeRegion: claims.region,
    region: claims.region,
    node: { id: claims.node, region: claims.region, signalingUrl: agentUrl },
    token: joinToken,
    expiresAt: new Date(claims.exp * 1000).toISOString(),
    iceServers: [],
    cascade: { regions: [] },
    rttSource: 'default',
    reasons: [],
    candidates: [],
  };
}

export interface ConnectResult {
  socket: Socket;
  welcome?: Record<string, unknown>;
  error?: { message: string; data?: { code: string; message: string } };
}

/** Connects and resolves on `welcome` or connect_error (no reconnection). */
export function connect(url: string, auth: Record<string, unknown>): Promise<ConnectResult> {
  const socket = io(url, { auth: { protocolVersion: PROTOCOL_VERSION, ...auth }, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((resolve) => {
    socket.once('welcome', (welcome: Record<string, unknown>) => resolve({ socket, welcome }));
    socket.once('connect_error', (error: Error & { data?: { code: string; message: string } }) => {
      socket.close();
      resolve({ socket, error: { message: error.message, ...(error.data ? { data: error.data } : {}) } });
    });
  });
}

export async function joinWith(url: string, auth: Record<string, unknown>): Promise<{ socket: Socket; welcome: Record<string, unknown> }> {
  const r = await connect(url, auth);
  if (!r.welcome) throw new Error(`connect refused: ${JSON.stringify(r.error)}`);
  return { socket: r.socket, welcome: r.welcome };
}

export function request<N extends RequestName>(socket: Socket, name: N, payload: RequestPayload<N> | unknown): Promise<Ack<ResponseData[N]>> {
  return socket.timeout(10_000).emitWithAck(name, payload) as Promise<Ack<ResponseData[N]>>;
}

/** Data of a successful request; throws with the error otherwise. */
export async function ok<N extends RequestName>(socket: Socket, name: N, payload: RequestPayload<N>): Promise<ResponseData[N]> {
  const reply = await request(socket, name, payload);
  if (!reply.ok) throw new Error(`${name} failed: ${JSON.stringify(reply.error)}`);
  return reply.data;
}

/** Records every server event of a socket. */
export function recordEvents(socket: Socket): Array<{ event: string; msg: unknown; at: number }> {
  const events: Array<{ event: string; msg: unknown; at: number }> = [];
  socket.onAny((event: string, msg: unknown) => events.push({ event, msg, at: performance.now() }));
  return events;
}

/** Everything the SFU holds, to compare before and after. */
export async function sfuCounts(agent: RunningAgent): Promise<{ rooms: number; peers: number; transports: number; producers: number; consumers: number; routers: number; sessions: number }> {
  const { totals } = await agent.sfu.pool.getLoad();
  return {
    rooms: agent.sfu.rooms.rooms.size,
    peers: agent.sfu.rooms.participantCount,
    transports: totals.transports,
    producers: totals.producers,
    consumers: totals.consumers,
    routers: totals.routers,
    sessions: agent.signaling?.sessionCount ?? 0,
  };
}
