import { Type, type Static } from '@sinclair/typebox';
import { RegionId } from './common.ts';

/**
 * A room's region policy (data residency): the regions its media may flow through and be processed
 * in (SFU nodes, cascade pipes, TURN). Set by the application (a grant's `policy` claim, or the
 * /allocate body for API-key callers); the room's first allocation fixes it (docs/region-policy.md).
 */
export const RegionPolicy = Type.Object(
  {
    /** The only regions the room's media may use. */
    allowedRegions: Type.Array(RegionId, { minItems: 1, maxItems: 64, uniqueItems: true }),
    /** Among allowed regions within GEO_SFU_MARGIN_MS of the best, these win (a soft preference). */
    preferredRegions: Type.Optional(Type.Array(RegionId, { maxItems: 64, uniqueItems: true })),
    /** Whether the P2P fallback may carry the room when no allowed region can (default false). */
    allowP2p: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type RegionPolicy = Static<typeof RegionPolicy>;

/** A policy in its one stored spelling: regions in catalog order, `preferredRegions` and `allowP2p` always present. */
export type NormalizedPolicy = Required<RegionPolicy>;

/** A field of a policy that the catalog refuses, and why. */
export interface PolicyProblem {
  field: string;
  message: string;
}

/**
 * The policy in its stored spelling, or the first problem: a region not in the catalog, or a
 * preferred region that is not allowed. Two policies are the same exactly when their keys are.
 */
export function normalizePolicy(policy: RegionPolicy, catalog: readonly string[], field = 'policy'): NormalizedPolicy | PolicyProblem {
  const known = new Set(catalog);
  for (const name of ['allowedRegions', 'preferredRegions'] as const) {
    const unknown = (policy[name] ?? []).find((r) => !known.has(r));
    if (unknown !== undefined) return { field: `${field}.${name}`, message: `${field}.${name}: ${unknown} is not a region of this deployment (${catalog.join(', ')})` };
  }
  const allowed = new Set(policy.allowedRegions);
  const outside = (policy.preferredRegions ?? []).find((r) => !allowed.has(r));
  if (outside !== undefined) return { field: `${field}.preferredRegions`, message: `${field}.preferredRegions: ${outside} is not one of the allowed regions` };
  const preferred = new Set(policy.preferredRegions ?? []);
  return {
    allowedRegions: catalog.filter((r) => allowed.has(r)),
    preferredRegions: catalog.filter((r) => preferred.has(r)),
    allowP2p: policy.allowP2p ?? false,
  };
}

/** The stored spelling of a normalized policy ('' = no policy): what stores compare and keep. */
export function policyKey(policy: NormalizedPolicy | null): string {
  if (policy === null) return '';
  return JSON.stringify({ allowedRegions: policy.allowedRegions, preferredRegions: policy.preferredRegions, allowP2p: policy.allowP2p });
}

/** The inverse of policyKey. */
export function parsePolicyKey(key: string | null | undefined): NormalizedPolicy | null {
  return key ? (JSON.parse(key) as NormalizedPolicy) : null;
}
