import { FormatRegistry, type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { CloseRequest, KickRequest, OpenAnswer, OpenRequest, SyncAnswer, SyncRequest } from './schemas/cascade.ts';
import {
  CloseSessionRequest,
  CordonRequest,
  Heartbeat,
  HeartbeatAck,
  Id,
  MoveRequest,
  NodeAdminStatus,
  NodeInventory,
  NodeRegistration,
  ParticipantEvent,
  ParticipantEventAnswer,
  RoomNodesAnswer,
  RoomNodesPush,
  RoomNodesQuery,
  TrackEvent,
} from './schemas/index.ts';
import { signedCall } from './signed-http.ts';

// Value.Check refuses a string format it does not know: HeartbeatAck.alerts[].since is a date-time.
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

/**
 * The control plane as data: every call between the router and the region agents, and between
 * agents, declared once. Both sides are typed from it: the serving side registers `path` with
 * `body` as its schema and answers one of `answers`; the calling side goes through `controlCall`,
 * which signs the request and checks the answer against the same schemas. Every call is a POST
 * signed with the cluster secret (shared/signed-request.ts); nothing else may call these paths.
 */
export type ControlSide = 'router' | 'agent';

export interface ControlCall<Body extends TSchema = TSchema, Answers extends Readonly<Record<number, TSchema>> = Readonly<Record<number, TSchema>>> {
  readonly from: ControlSide;
  readonly to: ControlSide;
  readonly path: string;
  readonly body: Body;
  /** The answers this call has, by status; any other status is a failure (the shared `{ error }` body). */
  readonly answers: Answers;
}

const call = <Body extends TSchema, Answers extends Readonly<Record<number, TSchema>>>(c: ControlCall<Body, Answers>) => c;
const Empty = Type.Null();

export const controlPlane = {
  /** A node announces itself (at start, and when the router says it does not know it). */
  register: call({ from: 'agent', to: 'router', path: '/v1/nodes/register', body: NodeRegistration, answers: { 200: HeartbeatAck } }),
  /** Load, probes and state, every heartbeat interval; the answer lists the peers to probe. */
  heartbeat: call({ from: 'agent', to: 'router', path: '/v1/nodes/heartbeat', body: Heartbeat, answers: { 200: HeartbeatAck } }),
  /** A node leaves for good (after its drain). */
  deregister: call({
    from: 'agent',
    to: 'router',
    path: '/v1/nodes/deregister',
    body: Type.Object({ nodeId: Id }, { additionalProperties: false }),
    answers: { 204: Empty },
  }),
  /** A participant joined (200: whether its allocation is current) or left (204). */
  participantEvent: call({
    from: 'agent',
    to: 'router',
    path: '/v1/nodes/participant-event',
    body: ParticipantEvent,
    answers: { 200: ParticipantEventAnswer, 204: Empty },
  }),
  /** A participant of this node published or unpublished a track (the router turns it into an application webhook event). */
  trackEvent: call({ from: 'agent', to: 'router', path: '/v1/nodes/track-event', body: TrackEvent, answers: { 204: Empty } }),
  /** The node sets of rooms this agent serves: the reconcile poll behind the pushes. */
  roomNodes: call({ from: 'agent', to: 'router', path: '/v1/nodes/room-nodes', body: RoomNodesQuery, answers: { 200: RoomNodesAnswer } }),

  /** Rooms' node sets changed: sent to every node that serves them or served them until now. */
  roomNodesPush: call({ from: 'router', to: 'agent', path: '/v1/cascade/room-nodes', body: RoomNodesPush, answers: { 204: Empty } }),
  /** Close a participant's session there (204), or say it had none (404). */
  closeSession: call({ from: 'router', to: 'agent', path: '/v1/signaling/close', body: CloseSessionRequest, answers: { 204: Empty, 404: Type.Unknown() } }),
  /**
   * The sessions the agent holds now, by room (NodeInventory): the router reconciles rooms and node
   * counts with them after a Redis failover and periodically. Answered by agents with an SFU.
   */
  inventory: call({ from: 'router', to: 'agent', path: '/v1/signaling/inventory', body: Empty, answers: { 200: NodeInventory } }),
  /** Live rebalancing moved a participant: its agent tells it to allocate again. */
  move: call({ from: 'router', to: 'agent', path: '/v1/signaling/move', body: MoveRequest, answers: { 202: Empty } }),
  /**
   * An operator cordons (or uncordons) a node through the router's admin API. The agent's admin
   * route, which also takes the admin token from people and scripts: the call is its signed form.
   */
  nodeCordon: call({ from: 'router', to: 'agent', path: '/admin/cordon', body: CordonRequest, answers: { 200: NodeAdminStatus } }),
  /** An operator drains a node through the router: it takes no new rooms, moves its clients away and leaves (202: started). */
  nodeDrain: call({ from: 'router', to: 'agent', path: '/admin/drain', body: Empty, answers: { 202: NodeAdminStatus } }),

  /** Lower nodeId → higher: set up a pipe for a room. */
  cascadeOpen: call({ from: 'agent', to: 'agent', path: '/v1/cascade/open', body: OpenRequest, answers: { 200: OpenAnswer } }),
  /** Either side: my full export on this link (also the link's heartbeat). */
  cascadeSync: call({ from: 'agent', to: 'agent', path: '/v1/cascade/sync', body: SyncRequest, answers: { 200: SyncAnswer } }),
  /** Either side: this link is gone here. */
  cascadeClose: call({ from: 'agent', to: 'agent', path: '/v1/cascade/close', body: CloseRequest, answers: { 204: Empty } }),
  /** Higher nodeId → lower: please (re)open the link for this room now. */
  cascadeKick: call({ from: 'agent', to: 'agent', path: '/v1/cascade/kick', body: KickRequest, answers: { 202: Empty } }),
} as const;

export type CallBody<C extends ControlCall> = Static<C['body']>;
/** One of the answers a call has: its status and the body that status carries. */
export type CallAnswer<C extends ControlCall> = {
  [S in keyof C['answers'] & number]: { statusCode: S; body: Static<C['answers'][S]> };
}[keyof C['answers'] & number];

/** The other side answered, but not as the contract says (another status, or a body that fails its schema). */
export class ControlCallError extends Error {
  constructor(
    readonly path: string,
    readonly statusCode: number,
    /** The `{ error: { code } }` the other side sent, or `BAD_ANSWER` for a body that fails the schema. */
    readonly code: string,
    detail: string,
  ) {
    super(`${path} answered ${statusCode}: ${detail}`);
    this.name = 'ControlCallError';
  }
}

export interface ControlCallTarget {
  baseUrl: string;
  secret: string;
  timeoutMs: number;
  /** Wall clock the signature is dated with. */
  nowMs: number;
}

/** Makes a signed control-plane call; resolves with one of the call's answers, or throws ControlCallError. */
export async function controlCall<C extends ControlCall>(c: C, target: ControlCallTarget, body: CallBody<C>): Promise<CallAnswer<C>> {
  const res = await signedCall<unknown>({ secret: target.secret, baseUrl: target.baseUrl, method: 'POST', path: c.path, body, timeoutMs: target.timeoutMs, nowMs: target.nowMs });
  const schema = c.answers[res.statusCode];
  if (!schema) {
    const error = (res.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof error?.code === 'string' ? error.code : 'ERROR';
    throw new ControlCallError(c.path, res.statusCode, code, typeof error?.message === 'string' ? error.message : JSON.stringify(res.body));
  }
  if (!Value.Check(schema, res.body)) throw new ControlCallError(c.path, res.statusCode, 'BAD_ANSWER', 'the body does not match the contract');
  return res as CallAnswer<C>;
}
