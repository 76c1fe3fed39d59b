import { io, type Socket } from 'socket.io-client';
import type { AllocateSfuResponse } from '../shared/schemas/index.ts';
import { type Ack, PROTOCOL_VERSION } from '../shared/signaling.ts';

/** The router and API key of the cluster under test, as the hostile benchmark's threads share them. */
export interface Target {
  routerUrl: string;
  apiKey: string;
}

/** RTTs that place everyone on us-west: the attacker and the legitimate traffic meet on one node. */
const NEAR_US_WEST = { 'us-west': 5, 'us-east': 70, 'eu-west': 140, apac: 170 };

export async function allocate(target: Target, roomId: string, participantId: string): Promise<{ ms: number; answer: AllocateSfuResponse | null }> {
  const started = performance.now();
  const res = await fetch(`${target.routerUrl}/allocate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': target.apiKey },
    body: JSON.stringify({ roomId, participantId, latencies: NEAR_US_WEST }),
  });
  const answer = res.status === 200 ? ((await res.json()) as AllocateSfuResponse) : (await res.body?.cancel(), null);
  return { ms: performance.now() - started, answer };
}

/** A signaling request's answer; no answer within 20 s reads as a `TIMEOUT` refusal. */
export async function request(socket: Socket, name: string, payload: unknown): Promise<Ack<Record<string, unknown>>> {
  try {
    return (await socket.timeout(20_000).emitWithAck(name, payload)) as Ack<Record<string, unknown>>;
  } catch {
    return { ok: false, error: { code: 'TIMEOUT', message: 'no answer' } };
  }
}

export interface JoinedParticipant {
  socket: Socket;
  send: string;
  recv: string;
  /** The origin of the agent it joined (its /probe is there). */
  agentUrl: string;
}

/** Allocates, connects and joins as a participant with a send and a receive transport. */
export async function participant(target: Target, roomId: string, participantId: string): Promise<JoinedParticipant> {
  const { answer } = await allocate(target, roomId, participantId);
  if (!answer) throw new Error(`allocation of ${participantId} refused`);
  const socket = io(answer.node.signalingUrl, { auth: { protocolVersion: PROTOCOL_VERSION, token: answer.token }, transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('welcome', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
  const caps = await request(socket, 'getRouterRtpCapabilities', {});
  if (!caps.ok) throw new Error('getRouterRtpCapabilities refused');
  await request(socket, 'join', { rtpCapabilities: caps.data.rtpCapabilities });
  const send = await request(socket, 'createWebRtcTransport', { direction: 'send' });
  const recv = await request(socket, 'createWebRtcTransport', { direction: 'recv' });
  if (!send.ok || !recv.ok) throw new Error('transports refused');
  return { socket, send: String(send.data.transportId), recv: String(recv.data.transportId), agentUrl: new URL(answer.node.signalingUrl).origin };
}
