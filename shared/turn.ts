import { createHmac } from 'node:crypto';

/**
 * Time-limited TURN credentials for coturn's REST API scheme (`use-auth-secret` with
 * `static-auth-secret`, draft-uberti-behave-turn-rest):
 *
 *   username   = "<unix expiry seconds>:<participantId>"
 *   credential = base64(HMAC-SHA1(key = static-auth-secret, message = username))
 *
 * coturn recomputes the credential from the username with the same secret and refuses the
 * allocation once the expiry has passed, so the router never has to share a user database with
 * the TURN servers. The expiry is the part of the username before the first ':', so a
 * participant id may itself contain ':'.
 */
export interface TurnCredentialOptions {
  /** coturn's `static-auth-secret`. */
  secret: string;
  /** How long the credential is valid from `nowMs`, in whole seconds (> 0). */
  ttlSeconds: number;
  participantId: string;
  /** Current time (ms since epoch), injected so callers and tests control the clock. */
  nowMs: number;
  /** `turn:` / `turns:` URLs of the TURN servers these credentials are for. */
  urls: string | readonly string[];
}

/**
 * RTCIceServer-shaped (what browsers pass to `new RTCPeerConnection({ iceServers })`). The expiry
 * is the username's prefix, unix seconds.
 */
export interface TurnIceServer {
  urls: string[];
  username: string;
  credential: string;
}

/** base64(HMAC-SHA1(secret, username)), coturn's REST-API password for `username`. */
export function turnPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

export function turnCredentials({ secret, ttlSeconds, participantId, nowMs, urls }: TurnCredentialOptions): TurnIceServer {
  if (typeof secret !== 'string' || secret === '') throw new RangeError('turnCredentials: secret must be a non-empty string');
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new RangeError(`turnCredentials: ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  if (typeof participantId !== 'string' || participantId === '') throw new RangeError('turnCredentials: participantId must be a non-empty string');
  if (!Number.isFinite(nowMs) || nowMs < 0) throw new RangeError(`turnCredentials: nowMs must be a time in ms since epoch, got ${nowMs}`);
  const list = typeof urls === 'string' ? [urls] : [...urls];
  if (list.length === 0 || !list.every((u) => /^turns?:/i.test(u))) {
    throw new RangeError('turnCredentials: urls must be one or more turn:/turns: URLs');
  }
  const expiresAt = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAt}:${participantId}`;
  return { urls: list, username, credential: turnPassword(secret, username) };
}
