import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Heartbeat, HeartbeatAck, type NodeRegistration, type ParticipantEvent, ParticipantEventAnswer } from '../shared/schemas/index.ts';
import { signedCall } from '../shared/signed-http.ts';

// Value.Check refuses a string format it does not know: HeartbeatAck.alerts[].since is a date-time.
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

/** The router answered, but not as its API says (wrong status or body). */
export class RouterCallError extends Error {
  constructor(
    readonly path: string,
    readonly statusCode: number,
    detail: string,
  ) {
    super(`router ${path} answered ${statusCode}: ${detail}`);
    this.name = 'RouterCallError';
  }
}

export interface RouterClientOptions {
  routerUrl: string;
  clusterSecret: string;
  timeoutMs: number;
  now: () => number;
}

/** The router's node API, as the agent calls it: every call signed with the cluster secret. */
export class RouterClient {
  constructor(private readonly opts: RouterClientOptions) {}

  register(registration: NodeRegistration): Promise<HeartbeatAck> {
    return this.#ackCall('/v1/nodes/register', registration);
  }

  heartbeat(heartbeat: Heartbeat): Promise<HeartbeatAck> {
    return this.#ackCall('/v1/nodes/heartbeat', heartbeat);
  }

  async deregister(nodeId: string): Promise<void> {
    const path = '/v1/nodes/deregister';
    const res = await this.#call(path, { nodeId });
    if (res.statusCode !== 204 && res.statusCode !== 200) throw new RouterCallError(path, res.statusCode, describe(res.body));
  }

  /** A participant joined this node: the router answers whether its allocation is current. */
  async participantJoined(event: Omit<ParticipantEvent, 'event'>): Promise<ParticipantEventAnswer> {
    const path = '/v1/nodes/participant-event';
    const res = await this.#call(path, { ...event, event: 'joined' });
    if (res.statusCode !== 200) throw new RouterCallError(path, res.statusCode, describe(res.body));
    if (!Value.Check(ParticipantEventAnswer, res.body)) throw new RouterCallError(path, res.statusCode, 'body is not a ParticipantEventAnswer');
    return res.body;
  }

  /** A participant left this node (the router answers 204). */
  async participantLeft(event: Omit<ParticipantEvent, 'event'>): Promise<void> {
    const path = '/v1/nodes/participant-event';
    const res = await this.#call(path, { ...event, event: 'left' });
    if (res.statusCode !== 204) throw new RouterCallError(path, res.statusCode, describe(res.body));
  }

  async #ackCall(path: string, body: unknown): Promise<HeartbeatAck> {
    const res = await this.#call(path, body);
    if (res.statusCode !== 200) throw new RouterCallError(path, res.statusCode, describe(res.body));
    if (!Value.Check(HeartbeatAck, res.body)) throw new RouterCallError(path, res.statusCode, 'body is not a HeartbeatAck');
    return res.body;
  }

  #call(path: string, body: unknown) {
    return signedCall<unknown>({
      secret: this.opts.clusterSecret,
      baseUrl: this.opts.routerUrl,
      method: 'POST',
      path,
      body,
      timeoutMs: this.opts.timeoutMs,
      nowMs: this.opts.now(),
    });
  }
}

/** The router's own error message when it sent the shared `{ error }` shape. */
function describe(body: unknown): string {
  const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof message === 'string' ? message : JSON.stringify(body);
}
