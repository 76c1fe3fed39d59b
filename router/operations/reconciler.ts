import type { FastifyBaseLogger } from 'fastify';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { controlCall, controlPlane } from '../../shared/control-plane.ts';
import type { MoveRequest, NodeInventory } from '../../shared/schemas/index.ts';
import { Ticker } from '../../shared/ticker.ts';
import type { NodeRegistry, NodeSnapshot } from '../registry/node-registry.ts';
import { isSessionId } from '../state/session-buffer.ts';
import type { AdoptOutcome, ParticipantRecord, ReconcileStore, RoomState, RoomStore, SessionLog } from '../state/types.ts';

export type ReconcileAction = 'adopted' | 'joined' | 'dropped' | 'recounted' | 'moved_second_home' | 'moved_overbooked' | 'failover_seen';

/** One reconcile pass (the leader's), as counted and logged. */
export interface ReconcileResult {
  startedAtMs: number;
  /** Nodes whose inventory was read (the others were left as they were). */
  nodes: number;
  adopted: number;
  /** Allocations Redis held as not joined yet that their node serves joined (the join was lost). */
  joined: number;
  dropped: number;
  recounted: Array<{ nodeId: string; was: number; now: number }>;
  movedSecondHome: number;
  movedOverbooked: number;
}

export interface ReconcilerDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  rooms: RoomStore;
  store: ReconcileStore;
  sessions: SessionLog;
  isLeader: () => boolean;
  now: () => number;
  log: FastifyBaseLogger;
  onAction?: (action: ReconcileAction, n: number) => void;
  /** A room's node set changed (a participant re-created or dropped): push it to its nodes. */
  onRoomChanged?: (roomId: string, formerNodeIds: string[]) => void;
  /** The agent's inventory (default: the signed control-plane call). */
  fetchInventory?: (node: NodeSnapshot) => Promise<NodeInventory>;
  /** Tells a participant to move (default: the signed control-plane call to its node). */
  tellMove?: (node: NodeSnapshot, move: MoveRequest) => Promise<void>;
}

/**
 * Reconciles the rooms and node counts in Redis with what the agents serve. Asynchronous
 * replication can lose the last writes an old primary acknowledged (a pin, an allocation, a join, a
 * leave); each router watches which server holds the data (GEO_SFU_REDIS_IDENTITY_CHECK_MS), and
 * the leader reconciles at once when that changes, and every GEO_SFU_RECONCILE_INTERVAL_MS:
 *
 * 1. It reads every room from Redis, then asks every live agent for its inventory (the sessions it
 *    holds). Rooms first: a participant recorded joined at that read had reached its node before,
 *    so if the node no longer holds it, it left and its leave was lost.
 * 2. A participant Redis records as joined on a node whose inventory lacks it is dropped.
 * 3. A joined session Redis does not know is re-created on its node (atomic, by allocation id: a
 *    participant that allocated again since is left alone; one whose former allocation step 2
 *    dropped is re-created). If the room has no home any more it is pinned there; if its home in
 *    Redis is elsewhere and Redis knew nobody of the room on that node, the node was a second home
 *    of the room: the pin in Redis wins, and the participant is told to move (it allocates again and
 *    lands by the pin), kept and counted until it does. A joined session Redis records as not
 *    joined yet (its join was lost) is marked joined, before it would expire.
 * 4. Every node's count is recounted from the records, in one step (after a change of server, or
 *    when the pass re-created or dropped anyone).
 * 5. A node holding more participants than it takes: its newest participants beyond the limit are
 *    told to move.
 *
 * Every write is a compare-and-set (re-creation and removal by allocation id, the recount atomic)
 * and each move is claimed once in Redis, so two leaders at once (the lease around a failover) do
 * each change once and tell each participant once.
 *
 * Join reports within GEO_SFU_ALLOCATION_TTL_MS after a change of server (`mayHaveLost`): one of an
 * allocation Redis does not know at all is the agent's inventory for that participant, and the
 * route re-creates it the same way (`adoptJoined`) instead of answering "not current". One whose
 * participant Redis holds under another allocation cannot be judged from Redis alone: the reported
 * allocation may be the newer one, lost with the old server, or a stale report of an older one
 * (when the change was noticed, allocations on the new server may already have been made, so no
 * time tells them apart). The agents' inventories tell: until a leader has run a pass after the
 * change (`awaitingPass`, a mark in Redis every router reads), the route answers 503 with
 * Retry-After, the agent keeps the session and reports it again, and after the pass (drop what no
 * node serves, then re-create what the nodes serve) Redis answers.
 */
export class Reconciler {
  readonly #deps: ReconcilerDeps;
  /** When the server holding the data last changed (0: never seen). */
  #changedAtMs = 0;
  /** The change a leader's pass has run after, as last read from Redis or run here. */
  #reconciledAtMs = 0;
  #identityTicker: Ticker;
  #passTicker: Ticker;
  #last: ReconcileResult | null = null;
  /** A change of server was seen and no pass has run since (e.g. no router held the lease yet). */
  #owed = false;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    const { config, log } = deps;
    this.#identityTicker = new Ticker(config.redisIdentityCheckMs, () => this.checkIdentity().then(() => undefined), (err) => log.debug({ err }, 'Redis identity check failed'), { unref: true });
    this.#passTicker = new Ticker(config.reconcileIntervalMs, () => this.#tick(), (err) => log.warn({ err }, 'reconcile failed'), { unref: true });
  }

  start(): void {
    this.#identityTicker.start();
    this.#passTicker.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#identityTicker.stop(), this.#passTicker.stop()]);
  }

  /** The last pass this router ran. */
  get last(): ReconcileResult | null {
    return this.#last;
  }

  /**
   * Reads which server holds the data; when it changed since the last look, a pass runs now (on the
   * leader). Returns when it last changed.
   */
  async checkIdentity(): Promise<number> {
    await this.#readIdentity();
    // Right after a failover the lease may be held by nobody for a while, and the nodes' heartbeats
    // have not landed on the new server yet (every node looks dead, and a pass would read no
    // inventory): the pass waits for both.
    if (this.#owed && this.#deps.isLeader() && this.#deps.registry.livenessSettled()) void this.#passTicker.runNow();
    return this.#changedAtMs;
  }

  async #readIdentity(): Promise<void> {
    const { changedAtMs, changed, reconciledAtMs } = await this.#deps.store.identity(this.#deps.now());
    this.#reconciledAtMs = Math.max(this.#reconciledAtMs, reconciledAtMs);
    if (changedAtMs > this.#changedAtMs) {
      this.#changedAtMs = changedAtMs;
      if (changed) {
        this.#deps.log.warn({ changedAtMs }, 'Redis server holding the data changed (failover, restart or data lost): reconciling with the agents');
        this.#deps.onAction?.('failover_seen', 1);
      }
      this.#owed = true;
    }
  }

  /** Whether an allocation Redis does not know may have been lost with a server (within an allocation TTL of a change). */
  async mayHaveLost(): Promise<boolean> {
    // Checked now rather than waiting for the ticker: the report may come right after a failover.
    // A failed read fails the report (503, asked again): "not current" ends the participant's
    // session, so it is answered only on what Redis said.
    const changedAtMs = await this.checkIdentity();
    return changedAtMs > 0 && this.#deps.now() - changedAtMs < this.#deps.config.allocationTtlMs;
  }

  /**
   * Whether the last change of server (read by mayHaveLost just before) still waits for a leader's
   * pass: a join report Redis cannot make current is asked again until then (see the class comment).
   */
  awaitingPass(): boolean {
    return this.#changedAtMs > this.#reconciledAtMs;
  }

  /**
   * A join report of an allocation Redis does not know (nor any other of its participant), after a
   * change of server: the participant is re-created on the reporting node. True when the allocation
   * is recorded now (so it is current).
   */
  async adoptJoined(roomId: string, participantId: string, allocationId: string, nodeId: string): Promise<boolean> {
    const node = this.#deps.registry.snapshot().nodes.find((n) => n.nodeId === nodeId);
    if (!node) return false;
    const outcome = await this.#adopt(roomId, { participantId, allocationId }, node);
    return outcome === 'known' || outcome === 'adopted' || outcome === 'pinned' || outcome === 'conflict';
  }

  async #tick(): Promise<void> {
    if (!this.#deps.isLeader() || !this.#deps.registry.livenessSettled()) return;
    await this.runPass();
  }

  /** One pass (see the class comment); only the leader runs it on its own, tests call it directly. */
  async runPass(): Promise<ReconcileResult> {
    const { rooms, store, registry, now, config, log } = this.#deps;
    const startedAtMs = now();
    // The change this pass reconciles, read now (another router may have seen it first): one seen
    // later (a second failover meanwhile) owes another pass.
    await this.#readIdentity();
    const reconciling = this.#changedAtMs;
    // 1. Redis's rooms, then the inventories.
    const states = new Map<string, RoomState>();
    for (const roomId of await rooms.listRoomIds()) {
      const state = await rooms.getRoom(roomId);
      if (state) states.set(roomId, state);
    }
    const live = registry.snapshot().nodes.filter((n) => n.state !== 'dead');
    const inventories = new Map<string, { node: NodeSnapshot; allocations: Set<string>; inventory: NodeInventory }>();
    await Promise.all(
      live.map(async (node) => {
        try {
          const inventory = await (this.#deps.fetchInventory ?? ((n) => fetchInventory(config, n)))(node);
          const allocations = new Set(inventory.rooms.flatMap((r) => r.participants.map((p) => p.allocationId)));
          inventories.set(node.nodeId, { node, allocations, inventory });
        } catch (err) {
          log.debug({ err, nodeId: node.nodeId }, 'inventory not read: this node is left as it is');
        }
      }),
    );
    const result: ReconcileResult = { startedAtMs, nodes: inventories.size, adopted: 0, joined: 0, dropped: 0, recounted: [], movedSecondHome: 0, movedOverbooked: 0 };

    // 2. Joined records no node serves. Before the re-creations: a participant whose new allocation
    // (and its join) was lost still holds its former one in Redis, which its node no longer serves;
    // the former is dropped first, so the new one is re-created in this pass, not the next.
    for (const state of states.values()) {
      for (const p of state.participants) {
        const held = inventories.get(p.nodeId);
        if (!held || p.status !== 'joined' || held.allocations.has(p.allocationId)) continue;
        if (await rooms.removeParticipant(state.room.roomId, p.participantId, p.allocationId)) {
          result.dropped++;
          this.#deps.onAction?.('dropped', 1);
          this.#setStatus(p.allocationId, 'ended');
          this.#deps.onRoomChanged?.(state.room.roomId, [p.nodeId]);
        }
      }
    }

    // 3. Joined sessions Redis does not know, or knows as not joined yet (their join was lost).
    for (const { node, inventory } of inventories.values()) {
      for (const room of inventory.rooms) {
        const known = new Map(states.get(room.roomId)?.participants.map((p) => [p.allocationId, p]));
        for (const session of room.participants) {
          if (!session.joined) continue;
          const recorded = known.get(session.allocationId);
          if (recorded) {
            if (recorded.status === 'allocated' && (await this.#deps.rooms.markJoined(room.roomId, session.participantId, session.allocationId)).status === 'joined') {
              result.joined++;
              this.#deps.onAction?.('joined', 1);
              this.#setStatus(session.allocationId, 'active');
            }
            continue;
          }
          const outcome = await this.#adopt(room.roomId, session, node);
          if (outcome === 'adopted' || outcome === 'pinned' || outcome === 'conflict') result.adopted++;
          if (outcome === 'conflict') result.movedSecondHome++;
        }
      }
    }

    // 4. Counts equal to the records: after a change of server, or when this pass changed records.
    // Only then: the recount is one script over every participant (≈ 8 µs each: 20,000 block Redis
    // for ~160 ms), and scripts keep counts and records together otherwise.
    if (this.#owed || result.adopted + result.dropped > 0) {
      result.recounted = await store.recountNodes();
      this.#deps.onAction?.('recounted', result.recounted.length);
    }

    // 5. Overbooked nodes: their newest participants beyond the limit move (the same ones on every
    // leader, each told once).
    const counts = await rooms.nodeCounts();
    for (const { node } of inventories.values()) {
      const excess = (counts.get(node.nodeId) ?? 0) - node.maxParticipants;
      if (excess <= 0) continue;
      const onNode: Array<{ roomId: string; p: ParticipantRecord }> = [];
      for (const roomId of await rooms.listRoomIds()) {
        const state = await rooms.getRoom(roomId);
        for (const p of state?.participants ?? []) if (p.nodeId === node.nodeId && p.status === 'joined') onNode.push({ roomId, p });
      }
      onNode.sort((a, b) => b.p.allocatedAtMs - a.p.allocatedAtMs || (a.p.allocationId < b.p.allocationId ? -1 : 1));
      for (const { roomId, p } of onNode.slice(0, excess)) {
        if (await this.#move(node, { roomId, participantId: p.participantId, allocationId: p.allocationId })) {
          result.movedOverbooked++;
          this.#deps.onAction?.('moved_overbooked', 1);
        }
      }
    }

    this.#last = result;
    if (reconciling > this.#reconciledAtMs) {
      // Every router's join reports wait for this mark (awaitingPass); not written if the server changed again.
      if (await store.markReconciled(reconciling)) this.#reconciledAtMs = reconciling;
    }
    if (reconciling === this.#changedAtMs) this.#owed = false;
    if (result.adopted + result.joined + result.dropped + result.recounted.length + result.movedSecondHome + result.movedOverbooked > 0) {
      log.warn({ ...result, tookMs: now() - startedAtMs }, 'reconciled Redis with the agents');
    }
    return result;
  }

  /** Re-creates one session's participant on its node; a second home's participant is told to move. */
  async #adopt(roomId: string, session: { participantId: string; allocationId: string }, node: NodeSnapshot): Promise<AdoptOutcome> {
    const { now, config } = this.#deps;
    const at = now();
    const record: ParticipantRecord = {
      participantId: session.participantId,
      allocationId: session.allocationId,
      region: node.region,
      nodeId: node.nodeId,
      status: 'joined',
      rttMs: {},
      allocatedAtMs: at,
      expiresAtMs: at + config.allocationTtlMs,
      adoptedAtMs: at,
    };
    const outcome = await this.#deps.store.adopt(roomId, record, at);
    if (outcome === 'adopted' || outcome === 'pinned' || outcome === 'conflict') {
      this.#deps.onAction?.('adopted', 1);
      this.#setStatus(session.allocationId, 'active');
      this.#deps.onRoomChanged?.(roomId, []);
    }
    if (outcome === 'conflict' && (await this.#move(node, { roomId, participantId: session.participantId, allocationId: session.allocationId }))) {
      this.#deps.onAction?.('moved_second_home', 1);
    }
    return outcome;
  }

  /** The session row's status (allocation ids from agents are the router's UUIDs; anything else has no row). */
  #setStatus(allocationId: string, status: 'active' | 'ended'): void {
    if (isSessionId(allocationId)) this.#deps.sessions.setStatus(allocationId, status, new Date(this.#deps.now()));
  }

  /** Tells a participant to move, once across routers (claimed in Redis); true when this router told it. */
  async #move(node: NodeSnapshot, move: MoveRequest): Promise<boolean> {
    const { store, config, log } = this.#deps;
    if (!(await store.claimMove(move.allocationId, config.allocationTtlMs * 2))) return false;
    try {
      await (this.#deps.tellMove ?? ((n, m) => tellMove(config, n, m)))(node, move);
    } catch (err) {
      log.info({ err, ...move }, 'reconcile: participant not told to move');
    }
    return true;
  }
}

async function fetchInventory(config: GeoSfuConfig, node: NodeSnapshot): Promise<NodeInventory> {
  const res = await controlCall(controlPlane.inventory, { secret: config.clusterSecret, baseUrl: node.record.registration.controlUrl, timeoutMs: config.routerCallTimeoutMs, nowMs: Date.now() }, null);
  return res.body;
}

async function tellMove(config: GeoSfuConfig, node: NodeSnapshot, move: MoveRequest): Promise<void> {
  await controlCall(controlPlane.move, { secret: config.clusterSecret, baseUrl: node.record.registration.controlUrl, timeoutMs: config.routerCallTimeoutMs, nowMs: Date.now() }, move);
}
