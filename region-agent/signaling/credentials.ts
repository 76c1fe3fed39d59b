import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeBase64url } from '../../shared/base64url.ts';

/**
 * Resume credentials: `<payload>.<HMAC-SHA256>` (base64url), signed with a secret this agent
 * process draws at start, bound to the room, the peer, this node and one signaling session. The
 * credential itself does not expire: the session does (it is kept for GEO_SFU_RESUME_GRACE_MS
 * after its connection drops, then ended), so a credential resumes exactly while its session lives.
 */
export interface ResumeClaims {
  room: string;
  peer: string;
  node: string;
  /** Signaling session id (a fresh join token starts a new session). */
  sid: string;
}

export class ResumeCredentials {
  readonly #secret: Buffer;

  constructor(secret: Buffer = randomBytes(32)) {
    this.#secret = secret;
  }

  sign(claims: ResumeClaims): string {
    const payload = Buffer.from(JSON.stringify({ v: 1, ...claims })).toString('base64url');
    return `${payload}.${this.#mac(payload).toString('base64url')}`;
  }

  /** The claims, or null when the credential is malformed (not canonical base64url included) or not signed by this agent process. */
  verify(credential: string): ResumeClaims | null {
    const [payload, mac, extra] = credential.split('.');
    if (!payload || !mac || extra !== undefined) return null;
    const given = decodeBase64url(mac);
    const claimsJson = decodeBase64url(payload);
    const expected = this.#mac(payload);
    if (!given || !claimsJson || given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    try {
      const c = JSON.parse(claimsJson.toString('utf8')) as Record<string, unknown>;
      if (c.v !== 1 || typeof c.room !== 'string' || typeof c.peer !== 'string' || typeof c.node !== 'string' || typeof c.sid !== 'string') return null;
      return { room: c.room, peer: c.peer, node: c.node, sid: c.sid };
    } catch {
      return null;
    }
  }

  #mac(payload: string): Buffer {
    return createHmac('sha256', this.#secret).update(`geo-sfu-resume.${payload}`).digest();
  }
}
