import type { FastifyBaseLogger } from 'fastify';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { controlCall, controlPlane } from '../../shared/control-plane.ts';
import { type NormalizedPolicy, ROOM_NODES_PUSH_MAX_ROOMS, type RoomNodeSet, type RoomNodesOfRoom } from '../../shared/schemas/index.ts';
import type { NodeRegistry, NodeSnapshot } from '../registry/node-registry.ts';
import type { RoomStore } from '../state/types.ts';

/** What a room's node set is made of: a RoomState, or the room as an allocation just committed it. */
export interface RoomNodesBasis {
  version: number;
  participants: ReadonlyArray<{ nodeId: string }>;
  room: { policy: NormalizedPolicy | null };
}

/**
 * The nodes a room's participants are placed on (registered ones, in a region the room's policy
 * allows: the cascade never pipes a policy room's media outside it), at the room's version.
 */
export function roomNodeSet(state: RoomNodesBasis, nodes: ReadonlyMap<string, NodeSnapshot>): RoomNodeSet {
  const ids = [...new Set(state.participants.map((p) => p.nodeId))];
  const allowed = state.room.policy ? new Set(state.room.policy.allowedRegions) : null;
  return {
    version: state.version,
    nodes: ids.flatMap((id) => {
      const n = nodes.get(id);
      return n && (!allowed || allowed.has(n.region)) ? [{ nodeId: id, region: n.region, controlUrl: n.record.registration.controlUrl, state: n.state }] : [];
    }),
  };
}

export interface RoomNodesPusherDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  rooms: RoomStore;
  log: FastifyBaseLogger;
}

/**
 * Pushes a room's node set (controlPlane.roomNodesPush) to the agents that serve it, or served it
 * until the change, so their cascades follow without polling. Changes are coalesced per room: one
 * push at a time per room, reading the room as it is then (its version rises with every change, so
 * an agent keeps the newest set whatever order pushes from several routers arrive in), or taking
 * it as the change that made it knew it whole (an allocation on an exact basis): that saves
 * /allocate a read of the room for every participant in a node new to it. A push is
 * sent only when the set differs from the last one this router pushed for the room (or it knows
 * none), or a node named as former is no longer in it. Per agent, one push is on its way at a time,
 * and the next leaves no sooner than GEO_SFU_ROOM_NODES_PUSH_SPACING_MS after it: the rooms that
 * change meanwhile go together in the next (at most ROOM_NODES_PUSH_MAX_ROOMS a call), so a busy
 * router sends an agent a bounded number of calls a second whatever its allocation rate, not one
 * per room changed.
 * Fire-and-forget: a failure (an agent down, or without the route yet) is logged at debug; the
 * agents' reconcile poll is the safety net.
 */
export class RoomNodesPusher {
  /**
   * Rooms with a change not pushed yet → nodes that served them before the change, and the room
   * as the last change knew it (null: unknown, read it).
   */
  readonly #pending = new Map<string, { former: Set<string>; known: RoomNodesBasis | null }>();
  /** Rooms whose pushes are under way (one drain per room). */
  readonly #draining = new Set<string>();
  /** The node ids last pushed per room (rooms with nodes only). */
  readonly #last = new Map<string, ReadonlySet<string>>();
  readonly #drains = new Set<Promise<void>>();
  /** Per agent: the room sets for its next push (the newest version of each room), and where it is. */
  readonly #outbox = new Map<string, { controlUrl: string; rooms: Map<string, RoomNodesOfRoom> }>();
  /** Agents a push is on its way to, or about to be (after the current turn, or the spacing). */
  readonly #pushing = new Set<string>();
  /** When the last push to each agent left (performance.now()), for GEO_SFU_ROOM_NODES_PUSH_SPACING_MS. */
  readonly #lastSent = new Map<string, number>();
  readonly #sending = new Set<Promise<void>>();
  #closed = false;

  constructor(private readonly deps: RoomNodesPusherDeps) {}

  /**
   * The room's node set may have changed; `formerNodeIds` served it before the change; `known`:
   * the whole room as the change left it, if the caller knows it (else it is read before the push).
   */
  changed(roomId: string, formerNodeIds: Iterable<string> = [], known: RoomNodesBasis | null = null): void {
    if (this.#closed) return;
    let pending = this.#pending.get(roomId);
    if (!pending) this.#pending.set(roomId, (pending = { former: new Set(), known }));
    // Any change the room is not known after makes the push read it (changes since are in the read).
    else pending.known = known && pending.known && known.version > pending.known.version ? known : null;
    for (const id of formerNodeIds) pending.former.add(id);
    if (this.#draining.has(roomId)) return;
    this.#draining.add(roomId);
    // After the current turn: the changes made in it are pushed together.
    setImmediate(() => {
      const drain = this.#drain(roomId).finally(() => this.#drains.delete(drain));
      this.#drains.add(drain);
    });
  }

  /** Stops pushing; resolves once the pushes under way have been answered or timed out. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending.clear();
    this.#outbox.clear();
    await Promise.allSettled([...this.#drains]);
    await Promise.allSettled([...this.#sending]);
  }

  async #drain(roomId: string): Promise<void> {
    for (;;) {
      const pending = this.#pending.get(roomId);
      // Checked and cleared in one turn: a change made after this starts a drain of its own.
      if (!pending || this.#closed) {
        this.#draining.delete(roomId);
        return;
      }
      this.#pending.delete(roomId);
      try {
        await this.#push(roomId, pending.former, pending.known);
      } catch (err) {
        this.deps.log.debug({ roomId, err: (err as Error).message }, 'room nodes not pushed');
      }
    }
  }

  async #push(roomId: string, former: ReadonlySet<string>, known: RoomNodesBasis | null): Promise<void> {
    let state: RoomNodesBasis | null = known;
    if (!state) {
      try {
        state = await this.deps.rooms.getRoom(roomId);
      } catch (err) {
        this.deps.log.debug({ roomId, err: (err as Error).message }, 'room nodes not pushed: room not readable');
        return;
      }
    }
    if (!state || this.#closed) {
      this.#last.delete(roomId);
      return;
    }
    const nodes = new Map(this.deps.registry.snapshot().nodes.map((n) => [n.nodeId, n]));
    const set = roomNodeSet(state, nodes);
    const current = new Set(set.nodes.map((n) => n.nodeId));
    const last = this.#last.get(roomId);
    const differs = last === undefined || last.size !== current.size || [...last].some((id) => !current.has(id)) || [...former].some((id) => !current.has(id));
    if (!differs) return;
    if (current.size > 0) this.#last.set(roomId, current);
    else this.#last.delete(roomId);
    const targets = new Set([...current, ...(last ?? []), ...former]);
    const entry: RoomNodesOfRoom = { roomId, ...set };
    for (const nodeId of targets) {
      const node = nodes.get(nodeId);
      if (node && node.state !== 'dead') this.#enqueue(nodeId, node.record.registration.controlUrl, entry);
    }
  }

  #enqueue(nodeId: string, controlUrl: string, entry: RoomNodesOfRoom): void {
    let box = this.#outbox.get(nodeId);
    if (!box) this.#outbox.set(nodeId, (box = { controlUrl, rooms: new Map() }));
    box.controlUrl = controlUrl;
    const queued = box.rooms.get(entry.roomId);
    if (!queued || queued.version <= entry.version) box.rooms.set(entry.roomId, entry);
    if (this.#pushing.has(nodeId)) return;
    this.#pushing.add(nodeId);
    // After the current turn: the rooms changed in it go in one call.
    setImmediate(() => this.#send(nodeId));
  }

  /** After a push was answered: the next one, once the spacing since the last one's start has passed. */
  #sendNext(nodeId: string): void {
    const wait = (this.#lastSent.get(nodeId) ?? 0) + this.deps.config.roomNodesPushSpacingMs - performance.now();
    // Changes made until then wait for it too (an empty outbox then lets the agent go).
    if (wait <= 0) return this.#send(nodeId);
    setTimeout(() => this.#send(nodeId), wait).unref();
  }

  /** Sends the agent what its outbox holds, then, once answered, what came in meanwhile. */
  #send(nodeId: string): void {
    const box = this.#outbox.get(nodeId);
    if (!box || this.#closed) {
      this.#pushing.delete(nodeId);
      this.#lastSent.delete(nodeId);
      return;
    }
    const rooms = [...box.rooms.values()].slice(0, ROOM_NODES_PUSH_MAX_ROOMS);
    for (const { roomId } of rooms) box.rooms.delete(roomId);
    if (box.rooms.size === 0) this.#outbox.delete(nodeId);
    const { config, log } = this.deps;
    this.#lastSent.set(nodeId, performance.now());
    const target = { secret: config.clusterSecret, baseUrl: box.controlUrl, timeoutMs: config.routerCallTimeoutMs, nowMs: Date.now() };
    const sent: Promise<void> = controlCall(controlPlane.roomNodesPush, target, { rooms })
      .then(
        () => undefined,
        (err: unknown) => log.debug({ nodeId, rooms: rooms.map((r) => r.roomId), err: (err as Error).message }, 'room nodes not pushed'),
      )
      .finally(() => {
        this.#sending.delete(sent);
        this.#sendNext(nodeId);
      });
    this.#sending.add(sent);
  }
}
