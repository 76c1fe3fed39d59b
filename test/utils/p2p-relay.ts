import { io, type Socket } from 'socket.io-client';
import { expect } from 'vitest';
import { P2P_RELAY_PATH, type RelayAck } from '../../shared/p2p-relay.ts';
import type { AllocateP2pResponse } from '../../shared/schemas/index.ts';
import { allocate } from './http.ts';

/** Client RTTs of someone near us-east (the P2P tests' participants). */
export const NEAR_US_EAST = { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 };

export interface RelayClient {
  socket: Socket;
  events: Array<{ event: string; msg: unknown }>;
  signal(msg: unknown): Promise<RelayAck>;
  /** The messages of one event, in the order received. */
  of(event: string): unknown[];
}

/**
 * Connects to a router's P2P relay; resolves with the client once welcomed, rejects with the
 * refusal's data (`code`). The socket is pushed to `sockets`, which the test disconnects after.
 */
export function connectRelay(url: string, token: unknown, sockets: Socket[]): Promise<RelayClient> {
  const socket = io(url, { path: P2P_RELAY_PATH, auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
  sockets.push(socket);
  const events: RelayClient['events'] = [];
  socket.onAny((event: string, msg: unknown) => events.push({ event, msg }));
  const client: RelayClient = {
    socket,
    events,
    signal: (msg) => socket.timeout(3_000).emitWithAck('signal', msg) as Promise<RelayAck>,
    of: (event) => events.filter((e) => e.event === event).map((e) => e.msg),
  };
  return new Promise((resolve, reject) => {
    socket.once('welcome', () => resolve(client));
    socket.once('connect_error', (err: Error & { data?: { code: string } }) => reject(Object.assign(new Error(err.message), { code: err.data?.code })));
  });
}

/** An allocation of a participant near us-east that must be answered `mode: "p2p"`. */
export async function p2pAllocation(url: string, roomId: string, participantId: string): Promise<AllocateP2pResponse> {
  const res = await allocate(url, { roomId, participantId, latencies: NEAR_US_EAST });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const body = res.body as unknown as AllocateP2pResponse;
  expect(body.mode).toBe('p2p');
  return body;
}
