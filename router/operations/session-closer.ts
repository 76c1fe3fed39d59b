import type { FastifyBaseLogger } from 'fastify';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { CloseSessionRequest } from '../../shared/schemas/index.ts';
import { controlCall, controlPlane } from '../../shared/control-plane.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';

/** An admin removal must close the session within 1 s: the agent's answer is awaited this long. */
const AGENT_TIMEOUT_MS = 900;

export interface SessionCloserDeps {
  config: Pick<GeoSfuConfig, 'clusterSecret' | 'sessionOverlapMs'>;
  registry: NodeRegistry;
  log: FastifyBaseLogger;
  /** Default: the signed closeSession call (shared/control-plane.ts); true when it closed a session. */
  tellAgent?: (controlUrl: string, body: CloseSessionRequest) => Promise<boolean>;
}

/**
 * Closes participants' sessions on their agents (signed calls): at once for an admin removal, and
 * GEO_SFU_SESSION_OVERLAP_MS after a newer allocation of the participant joined for the sessions
 * of its earlier nodes, so that at most one session per participant carries media across the
 * cluster. The delayed closes are timers of this router: a router that stops drops them.
 */
export class SessionCloser {
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #tellAgent: (controlUrl: string, body: CloseSessionRequest) => Promise<boolean>;

  constructor(private readonly deps: SessionCloserDeps) {
    this.#tellAgent = deps.tellAgent ?? ((controlUrl, body) => tellAgentSigned(deps.config.clusterSecret, controlUrl, body));
  }

  /** Closes the participant's sessions on these nodes; resolves with the nodes that closed one (never rejects). */
  async closeOn(nodeIds: readonly string[], body: CloseSessionRequest): Promise<string[]> {
    const controlUrls = new Map(this.deps.registry.snapshot().nodes.map((n) => [n.nodeId, n.record.registration.controlUrl]));
    const closed = await Promise.all(
      [...new Set(nodeIds)].map(async (nodeId) => {
        const controlUrl = controlUrls.get(nodeId);
        if (!controlUrl) return null;
        try {
          return (await this.#tellAgent(controlUrl, body)) ? nodeId : null;
        } catch (err) {
          this.deps.log.warn({ nodeId, roomId: body.roomId, participantId: body.participantId, err: (err as Error).message }, 'could not close a session on its agent');
          return null;
        }
      }),
    );
    return closed.filter((id): id is string => id !== null);
  }

  /** A newer allocation joined: after the overlap, the sessions on `nodeIds` not holding it close. */
  closeReplacedLater(roomId: string, participantId: string, keepAllocationId: string, nodeIds: readonly string[]): void {
    if (nodeIds.length === 0) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.closeOn(nodeIds, { roomId, participantId, reason: 'replaced', keepAllocationId });
    }, this.deps.config.sessionOverlapMs);
    timer.unref();
    this.#timers.add(timer);
  }

  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** True when the agent closed a session (204), false when it had none (404). */
async function tellAgentSigned(secret: string, controlUrl: string, body: CloseSessionRequest): Promise<boolean> {
  const res = await controlCall(controlPlane.closeSession, { secret, baseUrl: controlUrl, timeoutMs: AGENT_TIMEOUT_MS, nowMs: Date.now() }, body);
  return res.statusCode === 204;
}
