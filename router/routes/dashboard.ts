import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GeoSfuError, TooManyRequestsError } from '../../shared/errors.ts';
import { PACKAGE_ROOT } from '../../shared/package-root.ts';
import { Ticker } from '../../shared/ticker.ts';
import { type DashboardParticipant, DashboardSnapshot, type DashboardRoom, type Heartbeat, type ParticipantQuality } from '../../shared/schemas/index.ts';
import { bearer, requireAdmin } from '../auth.ts';
import { roomView } from '../room-view.ts';
import { regionsView } from './regions.ts';
import { own } from '../../shared/own.ts';

/**
 * The operator dashboard: the page built from web/ (`npm run build:web`, part of `npm run setup`)
 * served at `/` and `/assets/*` (with the demo page at `/demo`, see web/README.md), and `GET /events`, a server-sent event stream with one snapshot
 * a second. Anyone gets the public part (GET /regions); with the admin token as `Authorization:
 * Bearer` the snapshot also holds the rooms, active alerts and scaling state. The browser reads
 * the stream with fetch (EventSource cannot send headers).
 */

interface EventsClient {
  stream: PassThrough;
  socket: Socket;
  ip: string;
  admin: boolean;
  /** Since when its connection could take no more (null: it keeps up). */
  fullSince: number | null;
}

export interface DashboardOptions {
  /** The built page (default: web/dist at the package root, from the sources as from dist/). */
  distDir?: string;
  maxRooms?: number;
}

const DEFAULT_DIST = join(PACKAGE_ROOT, 'web', 'dist');
const PARTICIPANTS_SHOWN = 24;
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
  map: 'application/json',
};
// The page loads only its own bundle and talks only to this router.
const PAGE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** The demo page's CSP: PAGE_CSP with the agents' HTTP and WebSocket origins added to connect-src. */
export function demoCsp(nodes: ReadonlyArray<{ signalingUrl: string; probeUrl: string }>): string {
  const origins = new Set<string>();
  for (const n of nodes) {
    for (const url of [n.signalingUrl, n.probeUrl]) {
      const u = URL.parse(url);
      if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) continue;
      origins.add(u.origin);
      origins.add(`${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}`);
    }
  }
  return PAGE_CSP.replace("connect-src 'self'", ["connect-src 'self'", ...[...origins].sort()].join(' '));
}

export const dashboardRoutes: FastifyPluginAsyncTypebox<DashboardOptions> = async (app, opts) => {
  const distDir = opts.distDir ?? DEFAULT_DIST;
  const maxRooms = opts.maxRooms ?? 100;
  const { config } = app;
  const regionOrder = config.regions.map((r) => r.id);
  const checkAdmin = requireAdmin(app.credentials.admin);

  const page = (file: string, csp: () => string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    const html = await readFile(join(distDir, file)).catch(() => null);
    if (html === null) {
      return reply
        .status(503)
        .type('text/plain; charset=utf-8')
        .send('geo-sfu web pages are not built: run npm run setup (or npm run build:web)\n');
    }
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').header('content-security-policy', csp()).send(html);
  };
  app.get('/', { schema: { hide: true } }, page('index.html', () => PAGE_CSP));
  // The demo also talks to the region agents (probes, socket.io signaling): their origins, as
  // registered now, join connect-src. A node registered after the page loaded needs a reload.
  app.get('/demo', { schema: { hide: true } }, page('demo.html', () => demoCsp(app.registry.snapshot().nodes.map((n) => n.record.registration))));

  app.get<{ Params: { file: string } }>('/assets/:file', { schema: { hide: true } }, async (req, reply) => {
    const { file } = req.params;
    const type = own(CONTENT_TYPES, file.slice(file.lastIndexOf('.') + 1));
    const body = ASSET_NAME.test(file) && type ? await readFile(join(distDir, 'assets', file)).catch(() => null) : null;
    if (body === null) return reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no asset ${file}` } });
    // Vite puts a content hash in every asset name.
    return reply.type(type!).header('cache-control', 'public, max-age=31536000, immutable').send(body);
  });

  // One snapshot per tick for every client, computed only while someone is listening.
  const clients = new Set<EventsClient>();
  const perIp = new Map<string, number>();

  const publicSnapshot = async (): Promise<DashboardSnapshot> => {
    return { at: new Date(app.now()).toISOString(), scope: 'public', regions: regionsView(app) };
  };
  const adminPart = async (): Promise<Pick<DashboardSnapshot, 'rooms' | 'roomsTotal' | 'roomsEmpty' | 'media' | 'alerts' | 'scaling' | 'rebalancing'>> => {
    const { rooms: store, quality, scaling, rebalancer } = app;
    const ids = (await store.listRoomIds()).sort();
    const states = await Promise.all(ids.slice(0, maxRooms).map((id) => store.getRoom(id)));
    const live = app.registry.snapshot().nodes.filter((n) => n.state !== 'dead');
    const reports = heartbeatIndex(live.map((n) => n.record.heartbeat));
    const rooms = states.flatMap((s) => (s && s.participants.length > 0 ? [dashboardRoom(roomView(s, regionOrder), reports)] : []));
    const view = scaling.view();
    return {
      rooms,
      roomsTotal: ids.length,
      roomsEmpty: states.filter((s) => s && s.participants.length === 0).length,
      media: {
        nodes: live.flatMap((n) => {
          const media = n.record.heartbeat?.media;
          return media ? [{ nodeId: n.nodeId, region: n.region, inBps: media.inBps, outBps: media.outBps }] : [];
        }),
        links: live.flatMap((n) =>
          (n.record.heartbeat?.media?.links ?? []).map((l) => ({ nodeId: n.nodeId, region: n.region, peerNodeId: l.peerNodeId, peerRegion: l.peerRegion, rooms: l.rooms, inBps: l.inBps, outBps: l.outBps })),
        ),
      },
      alerts: quality.active(),
      scaling: { regions: view.regions, decisions: view.decisions.map(({ atMs, ...d }) => ({ ...d, at: new Date(atMs).toISOString() })) },
      rebalancing: { enabled: rebalancer.enabled, decisions: rebalancer.recent().slice(0, 10).map(({ reasons: _reasons, ...d }) => d) },
    };
  };
  const send = (client: EventsClient, event: string, data: unknown) => {
    // A client whose connection has stayed unable to take more (its socket buffer full, the
    // snapshots piling up here) for GEO_SFU_EVENTS_SLOW_READER_MS is dropped, not buffered for.
    const at = app.now();
    if (client.stream.writableNeedDrain || client.socket.writableNeedDrain) {
      client.fullSince ??= at;
      if (at - client.fullSince >= config.eventsSlowReaderMs) return drop(client, true);
    } else {
      client.fullSince = null;
    }
    client.stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const broadcast = async (only?: EventsClient) => {
    const targets = only ? [only] : [...clients];
    if (targets.length === 0) return;
    try {
      const pub = await publicSnapshot();
      const admin = targets.some((c) => c.admin) ? { ...pub, scope: 'admin' as const, ...(await adminPart()) } : null;
      for (const c of targets) if (clients.has(c)) send(c, 'snapshot', c.admin ? admin! : pub);
    } catch (err) {
      app.log.warn({ err }, 'dashboard snapshot failed');
      for (const c of targets) if (clients.has(c)) send(c, 'failure', { message: 'snapshot failed' });
    }
  };
  // GEO_SFU_EVENTS_INTERVAL_MS; a snapshot slower than that delays the next one instead of piling up.
  const ticker = new Ticker(config.eventsIntervalMs, () => broadcast(), () => undefined, { unref: true });
  const drop = (client: EventsClient, slow = false) => {
    if (!clients.delete(client)) return;
    const left = (perIp.get(client.ip) ?? 1) - 1;
    if (left > 0) perIp.set(client.ip, left);
    else perIp.delete(client.ip);
    client.stream.end();
    // A slow reader would hold its socket until it read what is buffered: closed at once.
    if (slow) client.socket.destroy();
    if (clients.size === 0) void ticker.stop();
  };

  app.get(
    '/events',
    {
      schema: {
        // Public figures without a credential; rooms, alerts and scaling with the admin token.
        security: [{}, { admin: [] }],
        summary: 'Dashboard snapshots as server-sent events (text/event-stream), one every GEO_SFU_EVENTS_INTERVAL_MS (a second by default); rooms, alerts and scaling with the admin token',
        // Each `snapshot` event's data is a DashboardSnapshot; the handler sends the stream that carries them.
        response: { 200: { description: 'A `snapshot` event per tick (`failure` when one could not be taken)', content: { 'text/event-stream': { schema: Type.Unsafe<PassThrough>(DashboardSnapshot) } } } },
      },
    },
    async (req, reply) => {
      // No credential: public data. A credential that is not the admin token: 401 (not a silent downgrade).
      if (bearer(req) !== null) await checkAdmin(req);
      if (config.eventsMaxSubscribers > 0 && clients.size >= config.eventsMaxSubscribers) {
        void reply.header('retry-after', '10');
        throw new GeoSfuError('TOO_MANY_SUBSCRIBERS', 503, `the dashboard stream has its ${config.eventsMaxSubscribers} subscribers; retry later`);
      }
      const fromIp = perIp.get(req.ip) ?? 0;
      if (config.eventsMaxPerIp > 0 && fromIp >= config.eventsMaxPerIp) {
        throw new TooManyRequestsError(`${config.eventsMaxPerIp} dashboard streams are open from this address already`);
      }
      const client: EventsClient = { stream: new PassThrough(), socket: req.raw.socket, ip: req.ip, admin: bearer(req) !== null, fullSince: null };
      clients.add(client);
      perIp.set(req.ip, fromIp + 1);
      reply.raw.once('close', () => drop(client));
      client.stream.write(`retry: 2000\n\n`);
      // The first subscriber starts the ticker, whose first run sends it a snapshot at once.
      if (ticker.started) void broadcast(client);
      else ticker.start();
      return reply
        .type('text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache, no-transform')
        .header('x-accel-buffering', 'no')
        .send(client.stream);
    },
  );

  // Open streams would hold app.close() until the clients hang up.
  app.addHook('preClose', async () => {
    for (const c of [...clients]) drop(c);
  });
};

const reportKey = (nodeId: string, roomId: string, participantId: string) => `${nodeId}\n${roomId}\n${participantId}`;

/** What the live nodes' last heartbeats say of each participant: its media, whether it is reconnecting. */
interface HeartbeatIndex {
  quality: Map<string, ParticipantQuality>;
  reconnecting: Map<string, number>;
}

function heartbeatIndex(heartbeats: ReadonlyArray<Heartbeat | null>): HeartbeatIndex {
  const index: HeartbeatIndex = { quality: new Map(), reconnecting: new Map() };
  for (const hb of heartbeats) {
    if (!hb) continue;
    for (const q of hb.quality ?? []) index.quality.set(reportKey(hb.nodeId, q.roomId, q.participantId), q);
    for (const r of hb.reconnecting ?? []) index.reconnecting.set(reportKey(hb.nodeId, r.roomId, r.participantId), r.forMs);
  }
  return index;
}

function dashboardParticipant(roomId: string, p: ReturnType<typeof roomView>['participants'][number], reports: HeartbeatIndex): DashboardParticipant {
  const key = reportKey(p.nodeId, roomId, p.participantId);
  const reconnectingForMs = p.status === 'joined' ? reports.reconnecting.get(key) : undefined;
  const q = p.status === 'joined' ? reports.quality.get(key) : undefined;
  return {
    participantId: p.participantId,
    region: p.region,
    nodeId: p.nodeId,
    status: reconnectingForMs !== undefined ? 'reconnecting' : p.status,
    ...(reconnectingForMs !== undefined ? { reconnectingForMs } : {}),
    media: q ? { inBps: q.inBps ?? null, outBps: q.outBps ?? null, packetLoss: q.packetLoss, rttMs: q.rttMs, jitterMs: q.jitterMs, tracks: q.tracks ?? [] } : null,
  };
}

function dashboardRoom(view: ReturnType<typeof roomView>, reports: HeartbeatIndex): DashboardRoom {
  const byRegion = new Map<string, { region: string; count: number; joined: number; reconnecting: number; participantIds: string[] }>();
  const edge = (region: string) => {
    let e = byRegion.get(region);
    if (!e) byRegion.set(region, (e = { region, count: 0, joined: 0, reconnecting: 0, participantIds: [] }));
    return e;
  };
  edge(view.homeRegion);
  const people: DashboardParticipant[] = [];
  for (const p of view.participants) {
    const e = edge(p.region);
    const person = dashboardParticipant(view.roomId, p, reports);
    e.count++;
    if (p.status === 'joined') e.joined++;
    if (person.status === 'reconnecting') e.reconnecting++;
    if (e.participantIds.length < PARTICIPANTS_SHOWN) e.participantIds.push(p.participantId);
    if (people.length < PARTICIPANTS_SHOWN) people.push(person);
  }
  const links = new Map<string, { from: string; to: string }>();
  for (const l of view.cascade.links) {
    if (l.fromRegion === l.toRegion) continue;
    const [from, to] = [l.fromRegion, l.toRegion].sort();
    links.set(`${from}~${to}`, { from: from!, to: to! });
  }
  return {
    roomId: view.roomId,
    homeRegion: view.homeRegion,
    participants: view.participants.length,
    edges: [...byRegion.values()].filter((e) => e.count > 0 || e.region === view.homeRegion),
    people,
    links: [...links.values()],
    ...(view.policy ? { policy: view.policy } : {}),
  };
}
