import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { own } from '../../shared/own.ts';
import { P2P_RELAY_PATH } from '../../shared/p2p-relay.ts';
import type { AllocateP2pResponse, AllocateRequest, AllocateSfuResponse, Candidate, NodeRef, NodeRegistration, NormalizedPolicy } from '../../shared/schemas/index.ts';
import { type Permissions, signJoinToken, signRelayToken } from '../../shared/tokens.ts';
import { turnCredentials } from '../../shared/turn.ts';
import type { ClientRtt, PlacementDecision } from '../placement/types.ts';
import type { NodeSnapshot } from '../registry/node-registry.ts';
import type { ParticipantRecord, SessionLog } from '../state/types.ts';

/**
 * What an allocation hands out: the answer of POST /allocate (a join or relay token, STUN/TURN
 * servers with time-limited TURN credentials) and the allocation's row in the session log.
 */

/** The answer for a participant placed on an SFU node. */
export function sfuResponse(
  config: GeoSfuConfig,
  placedOn: {
    req: AllocateRequest;
    client: ClientRtt;
    decision: PlacementDecision;
    node: NodeSnapshot;
    participant: ParticipantRecord;
    homeRegion: string;
    permissions: Permissions | undefined;
    policy: NormalizedPolicy | null;
  },
): AllocateSfuResponse {
  const { req, client, decision, node, participant, homeRegion, permissions, policy } = placedOn;
  const nowMs = participant.allocatedAtMs;
  const expSeconds = Math.floor((nowMs + config.joinTokenTtlMs) / 1000);
  const token = signJoinToken(signingKey(config), {
    aid: participant.allocationId,
    room: req.roomId,
    sub: req.participantId,
    region: decision.region,
    node: decision.nodeId,
    ...(permissions ? { perm: permissions } : {}),
    iat: Math.floor(nowMs / 1000),
    exp: expSeconds,
  });
  return {
    mode: 'sfu',
    allocationId: participant.allocationId,
    roomId: req.roomId,
    participantId: req.participantId,
    homeRegion,
    region: decision.region,
    node: nodeRef(node.record.registration),
    token,
    expiresAt: new Date(expSeconds * 1000).toISOString(),
    iceServers: iceServers(config, decision.region, req.participantId, nowMs, policy),
    cascade: { regions: decision.cascadeRegions },
    rttSource: client.source,
    reasons: decision.reasons,
    candidates: decision.candidates,
  };
}

/** The answer for a participant given a place in its room's P2P mesh. */
export function p2pResponse(
  config: GeoSfuConfig,
  placedIn: { req: AllocateRequest; client: ClientRtt; allocationId: string; nowMs: number; candidates: Candidate[]; policy: NormalizedPolicy | null },
): AllocateP2pResponse {
  const { req, client, allocationId, nowMs, candidates, policy } = placedIn;
  const expSeconds = Math.floor((nowMs + config.joinTokenTtlMs) / 1000);
  const token = signRelayToken(signingKey(config), { aid: allocationId, room: req.roomId, sub: req.participantId, iat: Math.floor(nowMs / 1000), exp: expSeconds });
  // TURN of the client's nearest region (allowed by the room's policy): P2P media crosses the
  // network directly, so relay near the client.
  const allowed = policy ? new Set(policy.allowedRegions) : null;
  const nearest = Object.entries(client.byRegion).filter(([region]) => !allowed || allowed.has(region)).sort(([, a], [, b]) => a - b)[0]?.[0] ?? '*';
  return {
    mode: 'p2p',
    allocationId,
    roomId: req.roomId,
    participantId: req.participantId,
    relay: { path: P2P_RELAY_PATH, token },
    expiresAt: new Date(expSeconds * 1000).toISOString(),
    iceServers: iceServers(config, nearest, req.participantId, nowMs, policy),
    maxParticipants: config.p2pMaxParticipants,
    rttSource: client.source,
    candidates,
  };
}

/** The allocation's row in the durable session log (`video_sessions`). */
export function recordSession(
  sessions: SessionLog,
  roomId: string,
  p: Pick<ParticipantRecord, 'allocationId' | 'participantId' | 'nodeId' | 'region' | 'allocatedAtMs'>,
  homeRegion: string,
): void {
  sessions.record({
    id: p.allocationId,
    roomId,
    userId: p.participantId,
    serverId: p.nodeId,
    region: p.region,
    homeRegion,
    status: 'allocated',
    createdAt: new Date(p.allocatedAtMs),
    endedAt: null,
  });
}

function signingKey(config: GeoSfuConfig): GeoSfuConfig['tokenKeys'][number] {
  const key = config.tokenKeys[0];
  if (!key) throw new Error('no join-token key configured');
  return key;
}

/**
 * The configured STUN/TURN servers plus time-limited TURN credentials for the region's TURN servers
 * (the `*` ones for a region without its own). With a region policy, only servers the operator
 * tagged with regions the policy all allows: GEO_SFU_ICE_SERVERS entries by their `regions`, the
 * `*` TURN servers by GEO_SFU_TURN_ANY_REGIONS, a region's own by that region.
 */
function iceServers(config: GeoSfuConfig, region: string, participantId: string, nowMs: number, policy: NormalizedPolicy | null): AllocateSfuResponse['iceServers'] {
  const allowed = policy ? new Set(policy.allowedRegions) : null;
  const inPolicy = (regions: readonly string[] | undefined) => !allowed || (regions !== undefined && regions.length > 0 && regions.every((r) => allowed.has(r)));
  const servers = config.iceServers.filter((s) => inPolicy(s.regions)).map(({ regions: _where, ...server }) => server);
  const regional = own(config.turnUrls, region);
  const urls = regional ? (inPolicy([region]) ? regional : undefined) : inPolicy(config.turnAnyRegions) ? config.turnUrls['*'] : undefined;
  if (config.turnSecret === '' || !urls || urls.length === 0) return servers;
  return [...servers, turnCredentials({ secret: config.turnSecret, ttlSeconds: config.turnTtlSeconds, participantId, nowMs, urls })];
}

/** Where the allocation connects: the node, and its SFU's RTP capabilities when its agent registered them. */
export function nodeRef(registration: NodeRegistration): NodeRef {
  const { nodeId, region, signalingUrl, rtpCapabilities } = registration;
  return { id: nodeId, region, signalingUrl, ...(rtpCapabilities ? { rtpCapabilities } : {}) };
}
