import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { HeartbeatAck, NodeRegistration, Heartbeat, NodeState, RttStats } from '../../shared/schemas/index.ts';
import { Ticker } from '../../shared/ticker.ts';
import { buildInterRegionRtt } from '../placement/inter-region.ts';
import { nodeStress } from '../placement/stress.ts';
import type { InterRegionRtt, PlacementNode } from '../placement/types.ts';
import type { NodeRecord, NodeRegistryStore, RoomStore } from '../state/types.ts';

/** A registered node as the router sees it at one instant. */
export interface NodeSnapshot {
  record: NodeRecord;
  nodeId: string;
  region: string;
  state: NodeState;
  draining: boolean;
  cordoned: boolean;
  /** Participants the router counts on it (allocated + joined, across router replicas). */
  reserved: number;
  /** Participants at which the node is full: min(setting, what the agent advertises). */
  maxParticipants: number;
  stress: number;
}

export interface RegistrySnapshot {
  takenAtMs: number;
  nodes: NodeSnapshot[];
  /** Best measured RTT between two regions' nodes, by region pair. */
  interRegion: Record<string, Record<string, RttStats>>;
}

/** The registry as placement reads it (allocator, rebalancer, rehomer). */
export interface PlacementView {
  snapshot: RegistrySnapshot;
  /** `snapshot.nodes` as placement sees them, in the same order. */
  nodes: PlacementNode[];
  /** Measured inter-region RTTs, the geo model's where none was measured. */
  interRegionRtt: InterRegionRtt;
}

export interface NodeRegistryOptions {
  config: GeoSfuConfig;
  store: NodeRegistryStore;
  rooms: RoomStore;
  now: () => number;
}

/**
 * The live map of nodes: registration and heartbeats go to the shared store (so router replicas
 * agree); placement reads a snapshot refreshed in the background, so /allocate never waits on the
 * registry. Liveness comes from heartbeat age: suspect, then dead (GEO_SFU_SUSPECT_AFTER_MS,
 * GEO_SFU_DEAD_AFTER_MS).
 */
export class NodeRegistry {
  #snapshot: RegistrySnapshot = { takenAtMs: 0, nodes: [], interRegion: {} };
  /** The placement view of `#snapshot`, built once per refresh when first asked for. */
  #view: PlacementView | null = null;
  /** placementView()'s answer with states aged, and until when no node's state changes (cleared by each read). */
  #agedView: { view: PlacementView; untilMs: number } | null = null;
  /** `#snapshot`'s nodes by region, sorted by id (peersOf), built once per refresh when first asked for. */
  #byRegion: Map<string, NodeSnapshot[]> | null = null;
  #ticker: Ticker | null = null;
  #refreshing: Promise<RegistrySnapshot> | null = null;
  #refreshAgain: Promise<RegistrySnapshot> | null = null;
  /** Since when every read of the store has succeeded; null while it fails (see `livenessSettled`). */
  #storeReachableSinceMs: number | null = null;
  /**
   * After the store failed to answer (an outage, or a Sentinel failover, whose new primary may also
   * lack the last heartbeats written to the old one), live nodes' heartbeats look old until their
   * next one lands, and placement would take them for dead: refuse the room, or put it on another
   * node beside its home. So for GEO_SFU_DEAD_AFTER_MS after the store answers again, the nodes not
   * dead in the last read before count their heartbeat age from that answer. (A node that died during
   * the outage is then placed on for at most that long; its clients fail over from it.)
   */
  #heartbeatGrace: { sinceMs: number; nodeIds: ReadonlySet<string> } | null = null;

  constructor(private readonly opts: NodeRegistryOptions) {}

  /** Refreshes now and then every `intervalMs`. */
  async start(intervalMs: number): Promise<void> {
    await this.refresh();
    // A failed refresh keeps the last snapshot: node states still age from it (see `snapshot()`).
    this.#ticker = new Ticker(intervalMs, async () => void (await this.refresh()), () => undefined, { unref: true });
    this.#ticker.start();
  }

  async stop(): Promise<void> {
    await this.#ticker?.stop();
    this.#ticker = null;
  }

  async register(registration: NodeRegistration): Promise<HeartbeatAck> {
    await this.opts.store.register(registration, this.opts.now());
    await this.refresh();
    return { known: true, peers: this.peersOf(registration.nodeId) };
  }

  async heartbeat(heartbeat: Heartbeat): Promise<HeartbeatAck> {
    const known = await this.opts.store.heartbeat(heartbeat, this.opts.now());
    return { known, peers: known ? this.peersOf(heartbeat.nodeId) : [] };
  }

  async deregister(nodeId: string): Promise<void> {
    await this.opts.store.deregister(nodeId);
    await this.refresh();
  }

  /** The latest snapshot, with node states re-aged to now (so a stalled refresh still detects death). */
  snapshot(): RegistrySnapshot {
    const now = this.opts.now();
    const { config } = this.opts;
    return {
      ...this.#snapshot,
      nodes: this.#snapshot.nodes.map((n) => ({ ...n, state: nodeState(this.#heartbeatAgeMs(n.record, now), config) })),
    };
  }

  /**
   * The snapshot with node states as of the last successful read of the store, not aged since: while
   * the store is unreachable, heartbeats cannot land, so aging would show live nodes as dead.
   */
  lastRead(): RegistrySnapshot {
    return this.#snapshot;
  }

  /**
   * The placement view: the RTT matrix and placement nodes are built once per refresh; node states
   * are aged to now as in `snapshot()` (`aged: false`: as of the last read, as in `lastRead()`).
   */
  placementView(aged = true): PlacementView {
    const read = (this.#view ??= this.#placementViewOf(this.#snapshot, null));
    if (!aged) return read;
    // Every /allocate asks: age the nodes only when one of them crosses a threshold, not on each call.
    const now = this.opts.now();
    if (this.#agedView && now < this.#agedView.untilMs) return this.#agedView.view;
    const snapshot = this.snapshot();
    const view = snapshot.nodes.every((n, i) => n.state === read.nodes[i]!.state) ? read : this.#placementViewOf(snapshot, read.interRegionRtt);
    this.#agedView = { view, untilMs: this.#nextStateChangeMs(now) };
    return view;
  }

  /** The first time after `nowMs` when a node's aged state can differ from its state at `nowMs`. */
  #nextStateChangeMs(nowMs: number): number {
    const { suspectAfterMs, deadAfterMs } = this.opts.config;
    const grace = this.#heartbeatGrace;
    // Ages grow with the clock, except where the heartbeat grace ends (an age then jumps).
    let untilMs = grace && nowMs - grace.sinceMs < deadAfterMs ? grace.sinceMs + deadAfterMs : Number.POSITIVE_INFINITY;
    for (const n of this.#snapshot.nodes) {
      const age = this.#heartbeatAgeMs(n.record, nowMs);
      if (age < suspectAfterMs) untilMs = Math.min(untilMs, nowMs + suspectAfterMs - age);
      else if (age < deadAfterMs) untilMs = Math.min(untilMs, nowMs + deadAfterMs - age);
    }
    return untilMs;
  }

  #placementViewOf(snapshot: RegistrySnapshot, interRegionRtt: InterRegionRtt | null): PlacementView {
    const { config } = this.opts;
    const nodes = snapshot.nodes.map((n): PlacementNode => ({ nodeId: n.nodeId, region: n.region, state: n.state, draining: n.draining, cordoned: n.cordoned, stress: n.stress }));
    if (interRegionRtt === null) {
      const measured: Record<string, Record<string, number | null>> = {};
      for (const [from, row] of Object.entries(snapshot.interRegion)) {
        measured[from] = Object.fromEntries(Object.entries(row).map(([to, s]) => [to, s.rttMs]));
      }
      interRegionRtt = buildInterRegionRtt({ regions: config.regions, measured, model: { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm } });
    }
    return { snapshot, nodes, interRegionRtt };
  }

  /**
   * Reads the store. Callers while a read runs share the one after it: that read may have started
   * before what they just wrote (a node registered), so it cannot answer for them.
   */
  refresh(): Promise<RegistrySnapshot> {
    if (this.#refreshing) {
      this.#refreshAgain ??= this.#refreshing
        .catch(() => undefined)
        .then(() => {
          this.#refreshAgain = null;
          return this.refresh();
        });
      return this.#refreshAgain;
    }
    this.#refreshing = this.#read()
      .then(
        (snapshot) => {
          this.#storeReachableSinceMs ??= this.opts.now();
          return snapshot;
        },
        (err: unknown) => {
          this.#storeReachableSinceMs = null;
          throw err;
        },
      )
      .finally(() => {
        this.#refreshing = null;
      });
    return this.#refreshing;
  }

  /**
   * Whether a node that looks dead really stopped heartbeating: true once the store has been
   * readable for a whole GEO_SFU_DEAD_AFTER_MS. Right after this router starts, or after the store
   * was unreachable (heartbeats could not be recorded meanwhile), every node's heartbeat looks old
   * until it lands again; acting on that (re-homing rooms) would move rooms off live nodes.
   */
  livenessSettled(): boolean {
    return this.#storeReachableSinceMs !== null && this.opts.now() - this.#storeReachableSinceMs >= this.opts.config.deadAfterMs;
  }

  async #read(): Promise<RegistrySnapshot> {
    const { config, store, rooms, now } = this.opts;
    const [records, counts] = await Promise.all([store.list(), rooms.nodeCounts()]);
    const takenAtMs = now();
    // The first answer after failed reads (not the first read ever): see #heartbeatGrace.
    if (this.#storeReachableSinceMs === null && this.#snapshot.takenAtMs > 0) {
      this.#heartbeatGrace = { sinceMs: takenAtMs, nodeIds: new Set(this.#snapshot.nodes.filter((n) => n.state !== 'dead').map((n) => n.nodeId)) };
    }
    const live: NodeRecord[] = [];
    for (const record of records) {
      if (takenAtMs - record.lastHeartbeatMs > config.forgetDeadAfterMs) {
        await store.deregister(record.registration.nodeId);
      } else {
        live.push(record);
      }
    }
    const nodes = live.map((record) => toSnapshot(record, counts.get(record.registration.nodeId) ?? 0, this.#heartbeatAgeMs(record, takenAtMs), config));
    this.#snapshot = { takenAtMs, nodes, interRegion: interRegionFrom(nodes) };
    this.#view = null;
    this.#agedView = null;
    this.#byRegion = null;
    return this.#snapshot;
  }

  /** How old the node's heartbeat counts as at `nowMs` (see #heartbeatGrace). */
  #heartbeatAgeMs(record: NodeRecord, nowMs: number): number {
    const grace = this.#heartbeatGrace;
    if (grace && nowMs - grace.sinceMs < this.opts.config.deadAfterMs && grace.nodeIds.has(record.registration.nodeId)) {
      return nowMs - Math.max(record.lastHeartbeatMs, grace.sinceMs);
    }
    return nowMs - record.lastHeartbeatMs;
  }

  /**
   * The peers a node probes (its heartbeat answer): in every region, its own included, up to
   * GEO_SFU_PROBE_PEERS_PER_REGION live nodes, a window over the region's nodes (sorted by id) that
   * starts at a place of the node's own and moves on by that many every GEO_SFU_PROBE_ROTATE_MS.
   * Every pair is measured in turn, and a heartbeat's answer, its probes and its `peerRtt` grow
   * with the regions, not with the fleet (listing every node made heartbeats O(N) each, probing
   * O(N²) in all, and refused `peerRtt` beyond 1,000 peers).
   */
  peersOf(nodeId: string): HeartbeatAck['peers'] {
    const { config, now } = this.opts;
    const at = now();
    const start = fnv1a(nodeId) + Math.floor(at / config.probeRotateMs) * config.probePeersPerRegion;
    const peers: HeartbeatAck['peers'] = [];
    for (const nodes of (this.#byRegion ??= byRegion(this.#snapshot.nodes)).values()) {
      let listed = 0;
      for (let i = 0; i < nodes.length && listed < config.probePeersPerRegion; i++) {
        const n = nodes[(start + i) % nodes.length]!;
        if (n.nodeId === nodeId || nodeState(this.#heartbeatAgeMs(n.record, at), config) === 'dead') continue;
        peers.push({ nodeId: n.nodeId, region: n.region, controlUrl: n.record.registration.controlUrl, probeUrl: n.record.registration.probeUrl });
        listed++;
      }
    }
    return peers;
  }
}

export function nodeState(heartbeatAgeMs: number, config: Pick<GeoSfuConfig, 'suspectAfterMs' | 'deadAfterMs'>): NodeState {
  if (heartbeatAgeMs >= config.deadAfterMs) return 'dead';
  if (heartbeatAgeMs >= config.suspectAfterMs) return 'suspect';
  return 'alive';
}

function toSnapshot(record: NodeRecord, reserved: number, heartbeatAgeMs: number, config: GeoSfuConfig): NodeSnapshot {
  const hb = record.heartbeat;
  const maxParticipants = Math.min(
    config.maxParticipantsPerNode,
    record.registration.maxParticipants,
    hb ? hb.maxParticipants : Number.POSITIVE_INFINITY,
  );
  const participants = Math.max(reserved, hb?.load.participants ?? 0);
  return {
    record,
    nodeId: record.registration.nodeId,
    region: record.registration.region,
    state: nodeState(heartbeatAgeMs, config),
    draining: hb?.draining ?? false,
    cordoned: hb?.cordoned ?? false,
    reserved,
    maxParticipants,
    stress: nodeStress(
      { cpu: hb?.load.cpu ?? 0, memory: hb?.load.memory ?? 0, participants },
      { maxCpu: config.maxCpu, maxMemory: config.maxMemory, maxParticipants },
    ),
  };
}

/** Nodes by region (a Map: region ids are operator-chosen), each region's sorted by node id. */
function byRegion(nodes: readonly NodeSnapshot[]): Map<string, NodeSnapshot[]> {
  const regions = new Map<string, NodeSnapshot[]>();
  for (const n of nodes) {
    const list = regions.get(n.region);
    if (list) list.push(n);
    else regions.set(n.region, [n]);
  }
  for (const list of regions.values()) list.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return regions;
}

/** 32-bit FNV-1a of a string: where a node's window over each region starts. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** For each region pair, the stats of the node pair with the lowest smoothed RTT. */
function interRegionFrom(nodes: readonly NodeSnapshot[]): Record<string, Record<string, RttStats>> {
  const regionOf = new Map(nodes.map((n) => [n.nodeId, n.region]));
  // Null-prototype: a region id may be `constructor` (the catalog's pattern allows it).
  const matrix: Record<string, Record<string, RttStats>> = Object.create(null);
  for (const node of nodes) {
    if (node.state === 'dead') continue;
    for (const [peerId, stats] of Object.entries(node.record.heartbeat?.peerRtt ?? {})) {
      const peerRegion = regionOf.get(peerId);
      if (peerRegion === undefined || stats.rttMs === null) continue;
      const row = (matrix[node.region] ??= Object.create(null) as Record<string, RttStats>);
      const best = row[peerRegion];
      if (!best || best.rttMs === null || stats.rttMs < best.rttMs) row[peerRegion] = stats;
    }
  }
  return matrix;
}
