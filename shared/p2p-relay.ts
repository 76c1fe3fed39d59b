/**
 * The router's P2P signaling relay protocol (socket.io at the path /allocate names, auth
 * `{ token }` with the relay token). The relay only forwards offers, answers and ICE candidates
 * between the connected participants of one P2P room, and tells them when to move to an SFU.
 *
 * Client → relay: `signal` (RelaySignal, with an ack).
 * Relay → client: `welcome` (the peers already connected: the newcomer offers to each of them),
 * `peerJoined`, `peerLeft`, `signal` (RelayForwarded), `migrate` (allocate again: a region can
 * take the room now).
 */

/** socket.io path of the relay on the router. */
export const P2P_RELAY_PATH = '/p2p/socket.io';

export const RELAY_LIMITS = {
  /** Longest SDP forwarded (a mesh of 8 with simulcast stays far below). */
  sdpMaxChars: 100_000,
  candidateMaxChars: 2_048,
  idMaxChars: 128,
  /** Longest auth token accepted. */
  tokenMaxChars: 4_096,
} as const;

export interface RelayDescription {
  type: 'offer' | 'answer';
  sdp: string;
}

export interface RelayCandidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** Exactly one of `description` and `candidate`. */
export interface RelaySignal {
  to: string;
  description?: RelayDescription;
  candidate?: RelayCandidate;
}

export type RelayForwarded = Omit<RelaySignal, 'to'> & { from: string };

export type RelayAck = { ok: true } | { ok: false; error: { code: string; message: string; field?: string } };

export interface RelayServerEvents {
  welcome: (msg: { participantId: string; peers: string[] }) => void;
  peerJoined: (msg: { peerId: string }) => void;
  peerLeft: (msg: { peerId: string }) => void;
  signal: (msg: RelayForwarded) => void;
  migrate: (msg: { reason: 'region_available' | 'room_on_sfu' }) => void;
}

export interface RelayClientEvents {
  signal: (msg: RelaySignal, ack: (ack: RelayAck) => void) => void;
}

export interface RelayFieldError {
  field: string;
  message: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= RELAY_LIMITS.idMaxChars;

function unknownKey(v: Record<string, unknown>, allowed: readonly string[], prefix: string): RelayFieldError | null {
  const extra = Object.keys(v).find((k) => !allowed.includes(k));
  return extra === undefined ? null : { field: `${prefix}${extra}`, message: 'is not allowed' };
}

/** The first problem of a `signal` message, or null when it is well formed. */
export function validateRelaySignal(msg: unknown): RelayFieldError | null {
  if (!isObject(msg)) return { field: 'signal', message: 'must be an object' };
  const extra = unknownKey(msg, ['to', 'description', 'candidate'], '');
  if (extra) return extra;
  if (!isId(msg.to)) return { field: 'to', message: `must be a participant id (1–${RELAY_LIMITS.idMaxChars} characters)` };
  if ((msg.description === undefined) === (msg.candidate === undefined)) return { field: 'description', message: 'exactly one of description and candidate is required' };
  if (msg.description !== undefined) {
    const d = msg.description;
    if (!isObject(d)) return { field: 'description', message: 'must be an object' };
    const bad = unknownKey(d, ['type', 'sdp'], 'description.');
    if (bad) return bad;
    if (d.type !== 'offer' && d.type !== 'answer') return { field: 'description.type', message: 'must be "offer" or "answer"' };
    if (typeof d.sdp !== 'string' || d.sdp.length === 0 || d.sdp.length > RELAY_LIMITS.sdpMaxChars) {
      return { field: 'description.sdp', message: `must be a string of 1–${RELAY_LIMITS.sdpMaxChars} characters` };
    }
    return null;
  }
  const c = msg.candidate;
  if (!isObject(c)) return { field: 'candidate', message: 'must be an object' };
  const bad = unknownKey(c, ['candidate', 'sdpMid', 'sdpMLineIndex', 'usernameFragment'], 'candidate.');
  if (bad) return bad;
  if (typeof c.candidate !== 'string' || c.candidate.length > RELAY_LIMITS.candidateMaxChars) {
    return { field: 'candidate.candidate', message: `must be a string of at most ${RELAY_LIMITS.candidateMaxChars} characters` };
  }
  if (c.sdpMid != null && (typeof c.sdpMid !== 'string' || c.sdpMid.length > 64)) return { field: 'candidate.sdpMid', message: 'must be a string of at most 64 characters' };
  if (c.sdpMLineIndex != null && (!Number.isInteger(c.sdpMLineIndex) || (c.sdpMLineIndex as number) < 0 || (c.sdpMLineIndex as number) > 1_024)) {
    return { field: 'candidate.sdpMLineIndex', message: 'must be an integer in [0, 1024]' };
  }
  if (c.usernameFragment != null && (typeof c.usernameFragment !== 'string' || c.usernameFragment.length > 256)) {
    return { field: 'candidate.usernameFragment', message: 'must be a string of at most 256 characters' };
  }
  return null;
}

/** The relay's auth: `{ token }`; null when well formed. */
export function validateRelayAuth(auth: unknown): RelayFieldError | null {
  if (!isObject(auth)) return { field: 'auth', message: 'must be an object' };
  const extra = unknownKey(auth, ['token'], 'auth.');
  if (extra) return extra;
  if (typeof auth.token !== 'string' || auth.token.length === 0 || auth.token.length > RELAY_LIMITS.tokenMaxChars) {
    return { field: 'auth.token', message: `must be the relay token from /allocate (1–${RELAY_LIMITS.tokenMaxChars} characters)` };
  }
  return null;
}
