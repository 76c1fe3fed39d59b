import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { type ConnectAuth, PROTOCOL_VERSION, protocolCompatible } from '../../shared/signaling.ts';
import { TokenError, verifyJoinToken, type JoinClaims } from '../../shared/tokens.ts';
import { AdmittedAllocations } from './admitted-allocations.ts';
import type { ResumeCredentials } from './credentials.ts';
import { assertPermissionsClaim } from './permissions.ts';
import { connectRefusal } from './refusals.ts';
import type { Admission, Sessions } from './sessions.ts';
import { validateAuth } from './validate.ts';

export interface AuthOptions {
  tokenKeys: GeoSfuConfig['tokenKeys'];
  credentials: ResumeCredentials;
  sessions: Sessions;
  /** This agent (join tokens are bound to it; resume credentials too). */
  agent: { readonly nodeId: string; readonly region: string; readonly draining: boolean };
  now: () => number;
}

/** The connection's credential (socket.io `auth`): checked once, in the connection middleware; a failure is a Refusal with a ConnectErrorCode. */
export class SignalingAuth {
  readonly #o: AuthOptions;
  readonly #admitted = new AdmittedAllocations();

  constructor(options: AuthOptions) {
    this.#o = options;
  }

  admit(auth: unknown): Admission {
    const { agent } = this.#o;
    const bad = validateAuth(auth);
    if (bad) throw connectRefusal('BAD_AUTH', `auth ${bad.message}`, bad.field);
    const { protocolVersion, token, resume, requests = [] } = auth as ConnectAuth;
    if (!protocolCompatible(protocolVersion)) {
      throw connectRefusal('PROTOCOL_VERSION', `protocol ${JSON.stringify(protocolVersion)} is not compatible with ${PROTOCOL_VERSION}`);
    }
    if (resume !== undefined) {
      // A resumed session's state is what survived; what to do next, the client decides once it knows it.
      if (requests.length > 0) throw connectRefusal('BAD_AUTH', 'auth.requests: only a connection with a join token carries requests', 'requests');
      const claims = this.#o.credentials.verify(resume);
      if (!claims || claims.node !== agent.nodeId) throw connectRefusal('RESUME_INVALID', 'resume credential does not verify on this node');
      const session = this.#o.sessions.get(claims.room, claims.peer);
      if (!session || session.sid !== claims.sid || session.ended) throw connectRefusal('RESUME_EXPIRED', 'the session to resume has ended (grace period over, left, or replaced)');
      return { resume: session };
    }
    if (token === undefined) throw connectRefusal('AUTH_REQUIRED', 'auth.token (join token) or auth.resume is required');
    if (agent.draining) throw connectRefusal('DRAINING', 'this node is draining: allocate again');
    let claims: JoinClaims;
    try {
      claims = verifyJoinToken(this.#o.tokenKeys, token, this.#o.now(), { region: agent.region, node: agent.nodeId });
    } catch (err) {
      if (err instanceof TokenError) throw connectRefusal(`TOKEN_${err.reason}`, err.message);
      throw err;
    }
    for (const field of ['aid', 'room', 'sub'] as const) {
      const v = claims[field];
      if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw connectRefusal('TOKEN_MALFORMED', `token claim ${field} is not an id`);
    }
    assertPermissionsClaim(claims.perm);
    if (!this.#admitted.admit(claims.aid, claims.exp * 1000, this.#o.now())) {
      throw connectRefusal('TOKEN_USED', 'this join token opened a session already: a dropped session resumes with its resume credential, a new one needs a new allocation');
    }
    return { claims, requests };
  }
}
