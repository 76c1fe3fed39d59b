import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { BadRequestError, DependencyUnavailableError, TooManyRequestsError } from '../../shared/errors.ts';
import { controlPlane } from '../../shared/control-plane.ts';
import type { ParticipantMoveReason } from '../../shared/app-webhook-events.ts';
import { ErrorBody, type RoomNodeSet } from '../../shared/schemas/index.ts';
import { roomNodeSet } from '../operations/room-nodes.ts';
import { isSessionId } from '../state/session-buffer.ts';
import { requireSignature } from '../../shared/signed-http.ts';

/** What every signed route may answer besides the contract's answers. */
const refusals = { 400: ErrorBody, 401: ErrorBody, 429: ErrorBody } as const;

/** The agents' side of the control plane (shared/control-plane.ts): every call is signed with the cluster secret. */
export const nodeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, registry, rooms, sessions, now, limits } = app;
  const signed = requireSignature(config.clusterSecret, config.signedRequestWindowMs, now, limits.nonces);
  const catalog = new Set(config.regions.map((r) => r.id));
  const regionOf = (nodeId: string) => registry.snapshot().nodes.find((n) => n.nodeId === nodeId)?.region ?? '';
  // Per node id, counted once the signature verified and the body validated (every body names its
  // node), over all these routes together: never per address, since many agents may share one
  // (a benchmark runs a thousand on loopback). This plugin's routes only.
  if (config.nodeCallsPerMinute > 0) {
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max: config.nodeCallsPerMinute,
      timeWindow: 60_000,
      cache: 100_000,
      keyGenerator: (req) => `node:${(req.body as { nodeId: string }).nodeId}`,
      errorResponseBuilder: (_req, context) =>
        new TooManyRequestsError(`more than ${context.max} signed calls per minute from this node; retry in ${Math.ceil(context.ttl / 1000)} s`),
    });
  }

  app.post(
    controlPlane.register.path,
    { onRequest: signed, schema: { hide: true, body: controlPlane.register.body, response: { ...controlPlane.register.answers, ...refusals } } },
    async (req) => {
      if (!catalog.has(req.body.region)) throw new BadRequestError(`region "${req.body.region}" is not in the catalog`, 'region');
      return registry.register(req.body);
    },
  );

  app.post(
    controlPlane.heartbeat.path,
    { onRequest: signed, schema: { hide: true, body: controlPlane.heartbeat.body, response: { ...controlPlane.heartbeat.answers, ...refusals } } },
    async (req) => ({ ...(await registry.heartbeat(req.body)), alerts: app.quality.forNode(req.body.nodeId) }),
  );

  app.post(
    controlPlane.deregister.path,
    { onRequest: signed, schema: { hide: true, body: controlPlane.deregister.body, response: { ...controlPlane.deregister.answers, ...refusals } } },
    async (req, reply) => {
      await registry.deregister(req.body.nodeId);
      return reply.status(204).send(null);
    },
  );

  app.post(
    controlPlane.participantEvent.path,
    { onRequest: signed, schema: { hide: true, body: controlPlane.participantEvent.body, response: { ...controlPlane.participantEvent.answers, ...refusals } } },
    async (req, reply) => {
      const { roomId, participantId, allocationId, event, nodeId } = req.body;
      const at = new Date(now());
      const joinedHere = (moveReason: ParticipantMoveReason | null) =>
        app.appEvents?.raise({ kind: 'joined', roomId, participantId, allocationId, nodeId, region: regionOf(nodeId), moveReason, atMs: at.getTime() });
      const leftHere = () => app.appEvents?.raise({ kind: 'left', roomId, participantId, allocationId, reason: req.body.reason ?? 'left', atMs: at.getTime() });
      if (await app.allocator.journalEvent(allocationId, event)) {
        // An allocation made while Redis was away: the journal carries the event to Redis with it.
        sessions.setStatus(allocationId, event === 'joined' ? 'active' : 'ended', at);
        await (event === 'joined' ? joinedHere(null) : leftHere());
        return event === 'joined' ? reply.status(200).send({ current: true }) : reply.status(204).send(null);
      }
      if (event === 'joined') {
        // `joined` answers whether the allocation is current (ParticipantEventAnswer); the agent
        // closes a session that is not.
        let outcome = await rooms.markJoined(roomId, participantId, allocationId);
        // Right after a change of Redis server (a failover may have lost writes), see Reconciler:
        // an allocation Redis does not know is re-created on this node rather than refused (the
        // agent admitted the participant on a token the router signed; a single-use grant could
        // not allocate again). One whose participant Redis holds under another allocation is
        // judged only once a reconcile pass has run: until then 503, the agent keeps the session
        // and reports it again ("not current" would end it).
        if ((outcome.status === 'unknown' || outcome.status === 'replaced') && app.reconciler && (await app.reconciler.mayHaveLost())) {
          if (outcome.status === 'unknown' && (await app.reconciler.adoptJoined(roomId, participantId, allocationId, nodeId))) outcome = await rooms.markJoined(roomId, participantId, allocationId);
          else if (app.reconciler.awaitingPass()) throw new DependencyUnavailableError('redis: the server holding the data changed and no reconcile pass has run since: report this join again', 1);
        }
        if (outcome.status !== 'joined') {
          // The agent closes the session: its allocation's row (if the router made one) ends with it.
          if (isSessionId(allocationId)) sessions.setStatus(allocationId, 'ended', at);
          return reply.status(200).send({ current: false, reason: outcome.status });
        }
        sessions.setStatus(allocationId, 'active', at);
        app.sessionCloser.closeReplacedLater(roomId, participantId, allocationId, outcome.earlierNodeIds);
        app.rebalancer.schedule(roomId);
        // The room's node set, so the agent sets up its cascade without asking; left out if the
        // room cannot be read now (the agent's reconcile poll asks again).
        const state = await rooms.getRoom(roomId).catch(() => null);
        const nodes = new Map(registry.snapshot().nodes.map((n) => [n.nodeId, n]));
        if (app.appEvents) {
          // Why this allocation replaced an earlier one elsewhere, if it was a move (see deriveEvents).
          const movedByPlan = state?.participants.find((p) => p.allocationId === allocationId)?.movedAtMs !== undefined;
          const earlier = outcome.earlierNodeIds.filter((id) => id !== nodeId).map((id) => nodes.get(id));
          const moveReason: ParticipantMoveReason | null = movedByPlan
            ? 'rebalance'
            : earlier.some((n) => n?.draining)
              ? 'drain'
              : earlier.some((n) => !n || n.state === 'dead')
                ? 'failover'
                : null;
          await joinedHere(moveReason);
        }
        if (!state) return reply.status(200).send({ current: true });
        return reply.status(200).send({ current: true, room: roomNodeSet(state, nodes) });
      }
      const removed = await rooms.removeParticipant(roomId, participantId, allocationId);
      sessions.setStatus(allocationId, 'ended', at);
      await leftHere();
      // An allocation already replaced (the old edge of a participant who moved) changes nothing:
      // the room was scheduled when the new one joined.
      if (removed) {
        app.rebalancer.schedule(roomId);
        app.roomNodes.changed(roomId, [removed.nodeId]);
      }
      return reply.status(204).send(null);
    },
  );

  app.post(
    controlPlane.trackEvent.path,
    { onRequest: signed, schema: { hide: true, body: controlPlane.trackEvent.body, response: { ...controlPlane.trackEvent.answers, ...refusals } } },
    async (req, reply) => {
      const { roomId, participantId, allocationId, event, track } = req.body;
      await app.appEvents?.raise({ kind: 'track', roomId, participantId, allocationId, published: event === 'published', track, atMs: now() });
      return reply.status(204).send(null);
    },
  );

  app.post(
    controlPlane.roomNodes.path,
    { onRequest: signed, schema: { hide: true, body: controlPlane.roomNodes.body, response: { ...controlPlane.roomNodes.answers, ...refusals } } },
    async (req) => {
      const nodes = new Map(registry.snapshot().nodes.map((n) => [n.nodeId, n]));
      // Keyed by room ids clients chose: a Map, then own properties (a room named __proto__ included).
      const rooms = new Map<string, RoomNodeSet>();
      for (const roomId of req.body.roomIds) {
        const state = await app.rooms.getRoom(roomId);
        if (state) rooms.set(roomId, roomNodeSet(state, nodes));
      }
      return { rooms: Object.fromEntries(rooms) };
    },
  );
};
