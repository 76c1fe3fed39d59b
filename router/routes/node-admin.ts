import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type CallAnswer, type CallBody, type ControlCall, controlCall, ControlCallError, controlPlane } from '../../shared/control-plane.ts';
import { GeoSfuError, NotFoundError } from '../../shared/errors.ts';
import { CordonRequest, ErrorBody, Id, NodeAdminStatus } from '../../shared/schemas/index.ts';
import { requireAdmin } from '../auth.ts';
import { ADMIN_ONLY } from '../openapi.ts';

/** The node's agent could not be reached, or answered outside the contract. 502. */
class AgentCallError extends GeoSfuError {
  constructor(nodeId: string, detail: string) {
    super('AGENT_UNAVAILABLE', 502, `node ${nodeId}'s agent did not do it: ${detail}`);
  }
}

const NodeParams = Type.Object({ nodeId: Id });
const refusals = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 502: ErrorBody } as const;

/**
 * The operator's node actions, at the router's address: each is forwarded to the node's agent as
 * a signed control-plane call (shared/control-plane.ts), so operators need neither the agents'
 * addresses nor the admin token on every agent. The router's view of the node follows with the
 * agent's next heartbeat, which the agent sends at once.
 */
export const nodeAdminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, registry } = app;

  const forward = async <C extends ControlCall>(nodeId: string, call: C, body: CallBody<C>): Promise<CallAnswer<C>> => {
    const node = registry.snapshot().nodes.find((n) => n.nodeId === nodeId);
    if (!node) throw new NotFoundError(`node ${nodeId} is not registered`);
    try {
      return await controlCall(call, { secret: config.clusterSecret, baseUrl: node.record.registration.controlUrl, timeoutMs: config.routerCallTimeoutMs, nowMs: Date.now() }, body);
    } catch (err) {
      throw new AgentCallError(nodeId, err instanceof ControlCallError ? err.message : `unreachable (${(err as Error).message})`);
    }
  };

  app.post(
    '/nodes/:nodeId/cordon',
    {
      preHandler: requireAdmin(app.credentials.admin),
      schema: {
        security: ADMIN_ONLY,
        summary: 'Cordon a node (`{ "cordoned": true }`: it takes no new rooms; its rooms stay) or uncordon it (`false`) (admin; forwarded to its agent)',
        params: NodeParams,
        body: CordonRequest,
        response: { 200: NodeAdminStatus, ...refusals },
      },
    },
    async (req) => (await forward(req.params.nodeId, controlPlane.nodeCordon, req.body)).body,
  );

  app.post(
    '/nodes/:nodeId/drain',
    {
      preHandler: requireAdmin(app.credentials.admin),
      schema: {
        security: ADMIN_ONLY,
        summary:
          'Drain a node (admin; forwarded to its agent): it takes no new rooms, tells its clients to move before GEO_SFU_DRAIN_DEADLINE_MS, then deregisters and stops. 202: the drain started',
        params: NodeParams,
        response: { 202: NodeAdminStatus, ...refusals },
      },
    },
    async (req, reply) => reply.status(202).send((await forward(req.params.nodeId, controlPlane.nodeDrain, null)).body),
  );
};
