import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { BadRequestError, NoCapacityError } from '../../shared/errors.ts';
import type { AllocateRequest, AllocateSfuResponse } from '../../shared/schemas/index.ts';
import { type Permissions, signJoinToken } from '../../shared/tokens.ts';
import type { GeoLookup } from '../geo.ts';
import { estimateClientRtt } from '../placement/client-rtt.ts';
import { buildInterRegionRtt } from '../placement/inter-region.ts';
import type { PlacementInput, PlacementNode, PlacementStrategy, RoomSnapshot } from '../placement/types.ts';
import type { NodeRegistry, RegistrySnapshot } from '../registry/node-registry.ts';
import type { ParticipantRecord, RoomState, RoomStore, SessionLog } from '../state/types.ts';

export interface AllocatorDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  rooms: RoomStore;
  sessions: SessionLog;
  strategy: PlacementStrategy;
  geoLookup: GeoLookup;
  now: () => number;
  newId: () => string;
  /** Observes each decision (metrics, scaling); `placed` is absent for refusals. */
  onDecision?: (outcome: AllocationOutcome, elapsedMs: number, placed?: PlacedAllocation) => void;
}

export type AllocationOutcome = 'home' | 'edge' | 'cascade' | 'overflow' | 'refused';

export interface PlacedAllocation {
  homeRegion: string;
  region: string;
  /** The client's RTT to its edge region, ms, as used for the decision. */
  clientRttMs: number;
}

/** How often an allocation is placed again after losing a race (node filled, room pinned elsewhere). */
const MAX_PLACEMENT_ATTEMPTS = 5;

/**
 * POST /allocate's I/O around the pure placement: read the room and the registry snapshot, place,
 * then commit atomically in the room store (which may say the node filled up or the room was
 * pinned meanwhile: place again on fresh state), sign the join token and queue the session row.
 */
export class Allocator {
  constructor(private readonly deps: AllocatorDeps) {}

  /** `permissions` come from the caller's grant and travel in the join token for the SFU to enforce. */
  async allocate(req: AllocateRequest, clientIp: string | null, permissions?: Permissions): Promise<AllocateSfuResponse> {
    const { config, rooms, strategy, now } = this.deps;
    const started = performance.now();
    const catalog = new Set(config.regions.map((r) => r.id));
    for (const region of Object.keys(req.latencies ?? {})) {
      if (!catalog.has(region)) throw new BadRequestError(`latencies.${region} is not a region of this deployment (${[...catalog].join(', ')})`, `latencies.${region}`);
    }
    const client = estimateClientRtt({
      regions: config.regions,
      measured: req.latencies,
      location: clientIp !== null && !hasAllRegions(req.latencies, catalog) ? this.deps.geoLookup(clientIp) : null,
      model: { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm, defaultRttMs: config.defaultClientRttMs },
    });

    const full = new Set<string>();
    let state = await rooms.getRoom(req.roomId);
    for (let attempt = 1; ; attempt++) {
      const snapshot = this.deps.registry.snapshot();
      const input = this.#placementInput(req, client, state, snapshot, full);
      const result = strategy.place(input);
      if (!result.ok) {
        this.deps.onDecision?.('refused', performance.now() - started);
        throw new NoCapacityError(`no region can take participant ${req.participantId} now: ${result.candidates.map((c) => `${c.region} ${c.excludedBecause ?? 'ok'}`).join(', ')}`);
      }
      const { decision } = result;
      const nowMs = now();
      const node = snapshot.nodes.find((n) => n.nodeId === decision.nodeId)!;
      const participant: ParticipantRecord = {
        participantId: req.participantId,
        allocationId: this.deps.newId(),
        region: decision.region,
        nodeId: decision.nodeId,
        status: 'allocated',
        rttMs: { ...client.byRegion },
        allocatedAtMs: nowMs,
        expiresAtMs: nowMs + config.allocationTtlMs,
      };
      const outcome = await rooms.allocate({
        roomId: req.roomId,
        proposedHome: { region: decision.homeRegion, nodeId: decision.homeNodeId },
        expectedHomeRegion: state?.room.homeRegion ?? null,
        participant,
        nodeLimit: node.maxParticipants,
        nowMs,
      });
      if (outcome.status !== 'ok') {
        if (attempt >= MAX_PLACEMENT_ATTEMPTS) {
          this.deps.onDecision?.('refused', performance.now() - started);
          throw new NoCapacityError(`allocation for room ${req.roomId} kept losing races; try again`, 1);
        }
        if (outcome.status === 'node_full') full.add(decision.nodeId);
        state = await rooms.getRoom(req.roomId);
        continue;
      }
      if (outcome.replaced) this.deps.sessions.setStatus(outcome.replaced.allocationId, 'ended', new Date(nowMs));
      this.deps.sessions.record({
        id: participant.allocationId,
        roomId: req.roomId,
        userId: req.participantId,
        serverId: decision.nodeId,
        region: decision.region,
        homeRegion: outcome.room.homeRegion,
        status: 'allocated',
        createdAt: new Date(nowMs),
        endedAt: null,
      });
      const expSeconds = Math.floor((nowMs + config.joinTokenTtlMs) / 1000);
      const key = config.tokenKeys[0];
      if (!key) throw new Error('no join-token key configured');
      const token = signJoinToken(key, {
        aid: participant.allocationId,
        room: req.roomId,
        sub: req.participantId,
        region: decision.region,
        node: decision.nodeId,
        ...(permissions ? { perm: permissions } : {}),
        iat: Math.floor(nowMs / 1000),
        exp: expSeconds,
      });
      this.deps.onDecision?.(outcomeOf(decision, outcome.room.homeRegion, state), performance.now() - started, {
        homeRegion: outcome.room.homeRegion,
        region: decision.region,
        clientRttMs: client.byRegion[decision.region] ?? config.defaultClientRttMs,
      });
      return {
        mode: 'sfu',
        allocationId: participant.allocationId,
        roomId: req.roomId,
        participantId: req.participantId,
        homeRegion: outcome.room.homeRegion,
        region: decision.region,
        node: { id: node.nodeId, region: node.region, signalingUrl: node.record.registration.signalingUrl },
        token,
        expiresAt: new Date(expSeconds * 1000).toISOString(),
        iceServers: [...config.iceServers],
        cascade: { regions: decision.cascadeRegions },
        rttSource: client.source,
        reasons: decision.reasons,
        candidates: decision.candidates,
      };
    }
  }

  #placementInput(
    req: AllocateRequest,
    client: PlacementInput['client'],
    state: RoomState | null,
    snapshot: RegistrySnapshot,
    full: ReadonlySet<string>,
  ): PlacementInput {
    const { config } = this.deps;
    const nodes: PlacementNode[] = snapshot.nodes.map((n) => ({
      nodeId: n.nodeId,
      region: n.region,
      state: n.state,
      draining: n.draining,
      cordoned: n.cordoned,
      stress: full.has(n.nodeId) ? Math.max(1, n.stress) : n.stress,
    }));
    const room: RoomSnapshot = {
      homeRegion: state?.room.homeRegion ?? null,
      homeNodeId: state?.room.homeNodeId ?? null,
      participants: (state?.participants ?? [])
        .filter((p) => p.participantId !== req.participantId)
        .map((p) => ({
          participantId: p.participantId,
          region: p.region,
          nodeId: p.nodeId,
          edgeRttMs: p.rttMs[p.region] ?? config.defaultClientRttMs,
        })),
    };
    const measured: Record<string, Record<string, number | null>> = {};
    for (const [from, row] of Object.entries(snapshot.interRegion)) {
      measured[from] = Object.fromEntries(Object.entries(row).map(([to, s]) => [to, s.rttMs]));
    }
    return {
      regions: config.regions.map((r) => r.id),
      nodes,
      interRegionRtt: buildInterRegionRtt({
        regions: config.regions,
        measured,
        model: { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm },
      }),
      client,
      room,
      excludeNodeIds: req.excludeNodeIds ?? [],
      marginMs: config.marginMs,
    };
  }
}

function hasAllRegions(latencies: Record<string, number> | undefined, catalog: ReadonlySet<string>): boolean {
  return latencies !== undefined && [...catalog].every((r) => latencies[r] !== undefined);
}

function outcomeOf(
  decision: { region: string; reasons: { code: string }[] },
  homeRegion: string,
  before: RoomState | null,
): AllocationOutcome {
  if (decision.reasons.some((r) => r.code === 'HOME_REGION_UNAVAILABLE')) return 'overflow';
  if (decision.region === homeRegion) return 'home';
  const inRoom = before?.participants.some((p) => p.region === decision.region) ?? false;
  return inRoom ? 'edge' : 'cascade';
}
