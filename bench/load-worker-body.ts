import type { TokenKey } from '../shared/config/load.ts';
import { createGrant } from '../shared/tokens.ts';

/** Request bodies for the load phases. */
const PROFILES = [
  { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 },
  { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 },
  { 'us-west': 140, 'us-east': 80, 'eu-west': 5, apac: 180 },
  { 'us-west': 165, 'us-east': 225, 'eu-west': 170, apac: 5 },
];

/** Rooms of 10 people, each from one of four places. */
export function allocateBody(i: number): string {
  return JSON.stringify({ roomId: `bench-${Math.floor(i / 10)}`, participantId: `p${i}`, latencies: PROFILES[i % 4] });
}

/** The credentials of the honest path: what an application's clients and servers present. */
export interface HonestCredentials {
  grantKey: TokenKey;
  grantAudience: string;
  apiKey: string;
}

/**
 * Request `i`'s credential on the honest path: every tenth call from an application server with
 * the API key, the others from participants, each with a grant of its own for its room (so the
 * per-identity rate limit counts each participant once: none is refused).
 */
export function honestHeaders(credentials: HonestCredentials): (i: number) => Record<string, string> {
  return (i) => {
    if (i % 10 === 9) return { authorization: `Bearer ${credentials.apiKey}` };
    const grant = createGrant({ key: credentials.grantKey, issuer: 'bench', audience: credentials.grantAudience, roomId: `bench-${Math.floor(i / 10)}`, participantId: `p${i}`, ttlSeconds: 600, nowMs: Date.now() });
    return { authorization: `Bearer ${grant}` };
  };
}

