import { ConflictError, NoCapacityError } from '../../shared/errors.ts';
import { type AllocateRequest, type Candidate, type NormalizedPolicy, policyKey } from '../../shared/schemas/index.ts';

/** The refusals of a room's region policy (docs/region-policy.md), shared by the SFU, degraded and P2P paths. */

/** 409 POLICY_CONFLICT: the room's first allocation fixed another region policy (or none). */
export function policyConflict(roomId: string, roomPolicy: NormalizedPolicy | null, asked: NormalizedPolicy | null): ConflictError {
  const describe = (p: NormalizedPolicy | null) => (p ? policyKey(p) : 'no policy');
  return new ConflictError(`room ${roomId} has ${describe(roomPolicy)}; this allocation states ${describe(asked)}`, 'POLICY_CONFLICT');
}

/** 503 NO_ALLOWED_REGION: no region the room's policy allows can take the participant now. */
export function noAllowedRegion(req: AllocateRequest, policy: NormalizedPolicy, candidates: readonly Candidate[]): NoCapacityError {
  const allowed = new Set(policy.allowedRegions);
  const why = whyNot(candidates.filter((c) => allowed.has(c.region)));
  return new NoCapacityError(`no region room ${req.roomId}'s policy allows can take participant ${req.participantId} now: ${why}`, 5, 'NO_ALLOWED_REGION');
}

export function whyNot(candidates: readonly Candidate[]): string {
  return candidates.map((c) => `${c.region} ${c.excludedBecause ?? 'ok'}`).join(', ');
}
