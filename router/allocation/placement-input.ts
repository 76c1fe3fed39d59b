import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { own } from '../../shared/own.ts';
import type { AllocateRequest, NormalizedPolicy } from '../../shared/schemas/index.ts';
import type { ClientRttModel } from '../placement/client-rtt.ts';
import type { ClientRtt, PlacedParticipant, PlacementInput } from '../placement/types.ts';
import type { PlacementView } from '../registry/node-registry.ts';
import type { ParticipantRecord } from '../state/types.ts';
import type { KnownRoom } from './known-rooms.ts';

/** The geo model that estimates a client's RTTs (GEO_SFU_GEO_*, GEO_SFU_DEFAULT_CLIENT_RTT_MS). */
export function clientRttModel(config: GeoSfuConfig): ClientRttModel {
  return { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm, defaultRttMs: config.defaultClientRttMs };
}

/**
 * What placement gets for one participant: the registry's placement view (nodes the store found
 * `full` since count as full), the client's RTTs, the room as known, without the participant, and
 * the allocation's region policy (which the store checks is the room's).
 */
export function placementInput(
  regions: readonly string[],
  config: GeoSfuConfig,
  req: AllocateRequest,
  client: ClientRtt,
  basis: KnownRoom,
  view: PlacementView,
  full: ReadonlySet<string>,
  policy: NormalizedPolicy | null,
): PlacementInput {
  return {
    regions,
    nodes: full.size === 0 ? view.nodes : view.nodes.map((n) => (full.has(n.nodeId) ? { ...n, stress: Math.max(1, n.stress) } : n)),
    interRegionRtt: view.interRegionRtt,
    client,
    room: {
      homeRegion: basis.home?.region ?? null,
      homeNodeId: basis.home?.nodeId ?? null,
      participants: basis.participants.filter((p) => p.participantId !== req.participantId),
    },
    excludeNodeIds: req.excludeNodeIds ?? [],
    marginMs: config.marginMs,
    policy,
  };
}

/** A participant as placement sees the others in its room. */
export function placed(p: ParticipantRecord, defaultClientRttMs: number): PlacedParticipant {
  return { participantId: p.participantId, region: p.region, nodeId: p.nodeId, edgeRttMs: own(p.rttMs, p.region) ?? defaultClientRttMs };
}
