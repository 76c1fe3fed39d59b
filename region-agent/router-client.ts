import { controlCall, controlPlane, type CallBody, type ControlCall } from '../shared/control-plane.ts';
import type { HeartbeatAck, NodeRegistration, Heartbeat, ParticipantEvent, ParticipantEventAnswer, RoomNodeSet, TrackEvent } from '../shared/schemas/index.ts';

export interface RouterClientOptions {
  routerUrl: string;
  /** This agent's node id (the room-nodes query names it). */
  nodeId: string;
  clusterSecret: string;
  timeoutMs: number;
  now: () => number;
}

/**
 * The router's side of the control plane (shared/control-plane.ts), as the agent calls it: every
 * call signed with the cluster secret, every answer checked against the contract (a call answered
 * otherwise throws ControlCallError). One per agent, built by its composition root (region-agent/app.ts)
 * and shared by the controller, the signaling's reports and the cascade.
 */
export class RouterClient {
  constructor(private readonly opts: RouterClientOptions) {}

  async register(registration: NodeRegistration): Promise<HeartbeatAck> {
    return (await this.#call(controlPlane.register, registration)).body;
  }

  async heartbeat(heartbeat: Heartbeat): Promise<HeartbeatAck> {
    return (await this.#call(controlPlane.heartbeat, heartbeat)).body;
  }

  async deregister(nodeId: string): Promise<void> {
    await this.#call(controlPlane.deregister, { nodeId });
  }

  /** A participant joined this node: the router answers whether its allocation is current. */
  async participantJoined(event: Omit<ParticipantEvent, 'event'>): Promise<ParticipantEventAnswer> {
    const res = await this.#call(controlPlane.participantEvent, { ...event, event: 'joined' });
    if (res.statusCode !== 200) throw new Error(`${controlPlane.participantEvent.path} answered a join with ${res.statusCode}`);
    return res.body;
  }

  /** A participant left this node. */
  async participantLeft(event: Omit<ParticipantEvent, 'event'>): Promise<void> {
    await this.#call(controlPlane.participantEvent, { ...event, event: 'left' });
  }

  /** A participant of this node published or unpublished a track. */
  async trackEvent(event: TrackEvent): Promise<void> {
    await this.#call(controlPlane.trackEvent, event);
  }

  /**
   * The node sets of these rooms (the cascade's reconcile poll), by room id; rooms the router does
   * not know are absent. A Map: room ids are client-chosen (a room may be named `__proto__`).
   */
  async roomNodes(roomIds: string[]): Promise<ReadonlyMap<string, RoomNodeSet>> {
    const { body } = await this.#call(controlPlane.roomNodes, { nodeId: this.opts.nodeId, roomIds: roomIds.slice(0, 1_000) });
    // JSON.parse made every room an own property; Object.entries reads only those.
    return new Map(Object.entries(body.rooms));
  }

  #call<C extends ControlCall>(call: C, body: CallBody<C>) {
    return controlCall(call, { secret: this.opts.clusterSecret, baseUrl: this.opts.routerUrl, timeoutMs: this.opts.timeoutMs, nowMs: this.opts.now() }, body);
  }
}
