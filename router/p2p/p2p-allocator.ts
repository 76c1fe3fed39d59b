import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { NoCapacityError } from '../../shared/errors.ts';
import type { AllocateP2pResponse, AllocateRequest, Candidate, NormalizedPolicy } from '../../shared/schemas/index.ts';
import { policyConflict } from '../allocation/policy-refusals.ts';
import { NO_ROOM } from '../allocation/known-rooms.ts';
import { clientRttModel, placementInput } from '../allocation/placement-input.ts';
import { p2pResponse, recordSession } from '../allocation/response.ts';
import { estimateClientRtt } from '../placement/client-rtt.ts';
import type { ClientRtt, PlacementStrategy } from '../placement/types.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import type { P2pRoomState, RoomStore, SessionLog } from '../state/types.ts';

export interface P2pAllocatorDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  rooms: RoomStore;
  sessions: SessionLog;
  strategy: PlacementStrategy;
  now: () => number;
  newId: () => string;
}

/**
 * The P2P fallback's side of allocation (GEO_SFU_P2P_FALLBACK): a place in a room's P2P mesh when
 * no region can take the participant, and whether a region can take a P2P room now (its relay
 * then moves the peers to the SFU).
 */
export class P2pAllocator {
  readonly #regionIds: readonly string[];

  constructor(private readonly deps: P2pAllocatorDeps) {
    this.#regionIds = deps.config.regions.map((r) => r.id);
  }

  /**
   * True when a region can take a P2P room now: placement for its first participant (with the RTTs
   * it was allocated with) on an empty room with the room's policy succeeds.
   */
  canHost(room: P2pRoomState): boolean {
    const first = room.participants[0];
    if (!first) return false;
    const { config, registry, strategy } = this.deps;
    const client = estimateClientRtt({ regions: config.regions, measured: first.rttMs, location: null, model: clientRttModel(config) });
    const req: AllocateRequest = { roomId: room.roomId, participantId: first.participantId };
    return strategy.place(placementInput(this.#regionIds, config, req, client, NO_ROOM, registry.placementView(), new Set(), room.policy)).ok;
  }

  /**
   * No region can take the participant (`candidates` say why): a place in the room's P2P mesh, or
   * NoCapacityError when the mesh is full or the room is on an SFU (409 when the room has another
   * region policy). `policy` is the allocation's (the caller checked it allows P2P).
   */
  async allocate(req: AllocateRequest, client: ClientRtt, candidates: Candidate[], policy: NormalizedPolicy | null): Promise<AllocateP2pResponse> {
    const { config, rooms, sessions, now } = this.deps;
    const nowMs = now();
    const allocationId = this.deps.newId();
    const outcome = await rooms.allocateP2p({
      roomId: req.roomId,
      policy,
      participant: {
        participantId: req.participantId,
        allocationId,
        status: 'allocated',
        rttMs: { ...client.byRegion },
        allocatedAtMs: nowMs,
        leaseUntilMs: nowMs + config.allocationTtlMs,
      },
      maxParticipants: config.p2pMaxParticipants,
      nowMs,
    });
    const why = candidates.map((c) => `${c.region} ${c.excludedBecause ?? 'ok'}`).join(', ');
    if (outcome.status === 'policy_conflict') throw policyConflict(req.roomId, outcome.policy, policy);
    if (outcome.status !== 'ok') {
      throw new NoCapacityError(
        outcome.status === 'full'
          ? `no region can take room ${req.roomId} now (${why}) and its P2P mesh is full (${config.p2pMaxParticipants} participants)`
          : `no region can take participant ${req.participantId} now (${why}) and room ${req.roomId} is on an SFU`,
      );
    }
    if (outcome.replaced) sessions.setStatus(outcome.replaced.allocationId, 'ended', new Date(nowMs));
    recordSession(sessions, req.roomId, { allocationId, participantId: req.participantId, nodeId: 'p2p', region: 'p2p', allocatedAtMs: nowMs }, 'p2p');
    return p2pResponse(config, { req, client, allocationId, nowMs, candidates, policy });
  }
}
