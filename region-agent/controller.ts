import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import type { Heartbeat, HeartbeatAck, NodeLoad, NodeRegistration } from '../shared/schemas/index.ts';
import { LoadSampler, type SfuLoadProvider } from './load.ts';
import { PeerProber, type PeerStatus } from './peer-prober.ts';
import type { RouterClient } from './router-client.ts';
import type { AgentSettings } from './settings.ts';
import { Ticker } from '../shared/ticker.ts';
import { clientTls } from '../shared/tls.ts';

export type AgentEvents = {
  /** The router accepted the registration (at start, and again after it forgot this node). */
  registered: [ack: HeartbeatAck];
  heartbeat: [heartbeat: Heartbeat, ack: HeartbeatAck];
  /** A heartbeat the router did not acknowledge (unreachable, timeout, refused). */
  heartbeatfailure: [heartbeat: Heartbeat, error: Error];
  draining: [];
  /** Everything is closed: server, timers, connections. */
  close: [];
};

export interface AgentStatus {
  nodeId: string;
  region: string;
  version: string;
  publicUrl: string;
  routerUrl: string;
  registered: boolean;
  draining: boolean;
  cordoned: boolean;
  /** Participants accepted now: the operator's override, else GEO_SFU_MAX_PARTICIPANTS_PER_NODE. */
  maxParticipants: number;
  capacityOverride: number | null;
  /** As of the last heartbeat. */
  load: NodeLoad;
  heartbeat: { lastSeq: number | null; failures: number; consecutiveFailures: number; lastAckAgoMs: number | null };
  peers: PeerStatus[];
  uptimeMs: number;
}

export interface AgentControllerOptions {
  app: FastifyInstance;
  config: GeoSfuConfig;
  settings: AgentSettings;
  load: SfuLoadProvider;
  /** The agent's client of the router (its registration, heartbeats, deregistration). */
  router: RouterClient;
  /** The heartbeat's media part: per-participant quality, node and cascade bandwidth, reconnecting sessions. */
  report?: () => Promise<HeartbeatReport>;
  /** The SFU routers' RTP capabilities, put in the registration (clients get them from /allocate); absent without an SFU. */
  rtpCapabilities?: () => Promise<NonNullable<NodeRegistration['rtpCapabilities']>>;
  now: () => number;
}

/** The heartbeat's media part (region-agent/plugins/control.ts composes it from the SFU, cascade and signaling). */
export type HeartbeatReport = Pick<Heartbeat, 'quality' | 'media' | 'reconnecting'>;

/** A heartbeat's JSON must stay well inside the router's body limit (BODY_LIMIT_BYTES, 64 KiB). */
const HEARTBEAT_BUDGET_BYTES = 48 * 1024;

/**
 * Keeps a heartbeat inside its budget: the per-track figures go first (kept for the first
 * participants, halving how many until it fits), then the per-participant quality from the end
 * (the alerts see fewer participants); the node's load, RTTs and bandwidth always go.
 */
export function fitHeartbeat(heartbeat: Heartbeat, budget = HEARTBEAT_BUDGET_BYTES): Heartbeat {
  const size = (h: Heartbeat) => Buffer.byteLength(JSON.stringify(h));
  if (size(heartbeat) <= budget || !heartbeat.quality) return heartbeat;
  const quality = heartbeat.quality;
  const withTracksFor = (n: number): Heartbeat => ({ ...heartbeat, quality: quality.map((q, i) => (i < n ? q : (({ tracks: _tracks, ...rest }) => rest)(q))) });
  let fitted = withTracksFor(0);
  for (let n = Math.floor(quality.length / 2); n > 0; n = Math.floor(n / 2)) {
    const candidate = withTracksFor(n);
    if (size(candidate) <= budget) return candidate;
  }
  while (size(fitted) > budget && fitted.quality && fitted.quality.length > 0) {
    fitted = { ...fitted, quality: fitted.quality.slice(0, Math.floor(fitted.quality.length / 2)) };
  }
  if (fitted.reconnecting && size(fitted) > budget) fitted = { ...fitted, reconnecting: fitted.reconnecting.slice(0, 100) };
  return fitted;
}

const IDLE_LOAD: NodeLoad = { cpu: 0, memory: 0, participants: 0, rooms: 0, transports: 0, producers: 0, consumers: 0, workers: 0 };

/**
 * The agent's life: listen, register with the router (retrying until it answers), heartbeat its
 * load and peer RTTs, register again when the router forgets it, and on drain wait for the room
 * to empty before deregistering and closing.
 */
export class AgentController extends EventEmitter<AgentEvents> {
  readonly nodeId: string;
  readonly region: string;
  readonly #app: FastifyInstance;
  readonly #config: GeoSfuConfig;
  readonly #settings: AgentSettings;
  readonly #log: FastifyBaseLogger;
  readonly #loadProvider: SfuLoadProvider;
  readonly #reportProvider: (() => Promise<HeartbeatReport>) | undefined;
  readonly #rtpCapabilities: AgentControllerOptions['rtpCapabilities'];
  readonly #sampler: LoadSampler;
  readonly #router: RouterClient;
  readonly #prober: PeerProber;
  readonly #heartbeats: Ticker;
  readonly #now: () => number;
  readonly #startedAt: number;
  /** Aborted when waiting (registration retries, drain polling) must end: leaving or closed. */
  readonly #stopWaiting = new AbortController();

  #publicUrl = '';
  #registered = false;
  #registration: Promise<void> | null = null;
  #cordoned = false;
  #capacityOverride: number | null = null;
  #seq = 0;
  #lastLoad: NodeLoad = IDLE_LOAD;
  #heartbeatFailures = 0;
  #consecutiveFailures = 0;
  #lastAckAt: number | null = null;
  #draining = false;
  #drained: Promise<void> | null = null;
  /** Deregistering or closed: nothing may register again. */
  #leaving = false;
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(opts: AgentControllerOptions) {
    super();
    const { app, config, settings } = opts;
    this.nodeId = settings.nodeId;
    this.region = settings.region;
    this.#app = app;
    this.#config = config;
    this.#settings = settings;
    this.#log = app.log.child({ nodeId: settings.nodeId, region: settings.region });
    this.#loadProvider = opts.load;
    this.#reportProvider = opts.report;
    this.#rtpCapabilities = opts.rtpCapabilities;
    this.#now = opts.now;
    this.#startedAt = opts.now();
    this.#sampler = new LoadSampler(opts.load, settings.cpuCores, settings.memoryBytes);
    this.#router = opts.router;
    this.#prober = new PeerProber({
      selfNodeId: settings.nodeId,
      peerRoutes: settings.peerRoutes,
      intervalMs: config.probeIntervalMs,
      timeoutMs: config.probeTimeoutMs,
      rttEwmaAlpha: config.rttEwmaAlpha,
      lossWindow: config.lossWindow,
      tls: clientTls(config.tlsCaFile),
      logger: this.#log,
    });
    this.#heartbeats = new Ticker(config.heartbeatIntervalMs, () => this.#heartbeat(), (err) => this.#log.error({ err }, 'heartbeat failed'));
    app.addHook('onClose', async () => this.#release());
  }

  /** Base URL of this agent (control API, probe, later signaling); empty until started. */
  get publicUrl(): string {
    return this.#publicUrl;
  }

  get registered(): boolean {
    return this.#registered;
  }

  get draining(): boolean {
    return this.#draining;
  }

  get cordoned(): boolean {
    return this.#cordoned;
  }

  get maxParticipants(): number {
    return this.#capacityOverride ?? this.#config.maxParticipantsPerNode;
  }

  get capacityOverride(): number | null {
    return this.#capacityOverride;
  }

  /** Load as of the last heartbeat. */
  get load(): NodeLoad {
    return this.#lastLoad;
  }

  get heartbeatFailures(): number {
    return this.#heartbeatFailures;
  }

  peers(): PeerStatus[] {
    return this.#prober.peers();
  }

  /** Ready to take rooms: registered with the router and not draining. */
  get ready(): boolean {
    return this.#registered && !this.#draining && !this.#closed;
  }

  /** Listens, then registers in the background (retrying until the router answers). Returns the public URL. */
  async start(): Promise<string> {
    if (this.#publicUrl !== '') throw new Error('agent already started');
    await this.#app.listen({ host: this.#config.agentHost, port: this.#config.agentPort });
    this.#publicUrl = this.#settings.publicUrl !== '' ? this.#settings.publicUrl : this.#derivePublicUrl();
    this.#prober.start();
    this.#registration = this.#register();
    return this.#publicUrl;
  }

  setCordoned(cordoned: boolean): void {
    if (cordoned === this.#cordoned) return;
    this.#cordoned = cordoned;
    this.#log.info({ cordoned }, cordoned ? 'cordoned: taking no new rooms' : 'uncordoned');
    void this.#heartbeats.runNow();
  }

  /** Overrides the participant capacity; null goes back to GEO_SFU_MAX_PARTICIPANTS_PER_NODE. */
  setCapacityOverride(maxParticipants: number | null): void {
    if (maxParticipants === this.#capacityOverride) return;
    this.#capacityOverride = maxParticipants;
    this.#log.info({ capacityOverride: maxParticipants, maxParticipants: this.maxParticipants }, 'capacity changed');
    void this.#heartbeats.runNow();
  }

  /**
   * Stops taking rooms (the router hears draining:true at once), waits until the last participant
   * leaves or GEO_SFU_DRAIN_DEADLINE_MS passes, deregisters and closes. Idempotent.
   */
  drain(): Promise<void> {
    if (this.#drained === null) {
      this.#draining = true;
      this.#drained = this.#drain();
    }
    return this.#drained;
  }

  /** Closes at once, without deregistering (the router will find the node dead). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#app.close();
      this.emit('close');
    })();
    return this.#closing;
  }

  status(): AgentStatus {
    return {
      nodeId: this.nodeId,
      region: this.region,
      version: this.#settings.version,
      publicUrl: this.#publicUrl,
      routerUrl: this.#config.routerUrl,
      registered: this.#registered,
      draining: this.#draining,
      cordoned: this.#cordoned,
      maxParticipants: this.maxParticipants,
      capacityOverride: this.#capacityOverride,
      load: this.#lastLoad,
      heartbeat: {
        lastSeq: this.#seq === 0 ? null : this.#seq - 1,
        failures: this.#heartbeatFailures,
        consecutiveFailures: this.#consecutiveFailures,
        lastAckAgoMs: this.#lastAckAt === null ? null : this.#now() - this.#lastAckAt,
      },
      peers: this.#prober.peers(),
      uptimeMs: this.#now() - this.#startedAt,
    };
  }

  #derivePublicUrl(): string {
    const address = this.#app.server.address() as AddressInfo;
    const wildcard = address.address === '0.0.0.0' || address.address === '::';
    const host = wildcard ? (address.family === 'IPv6' ? '::1' : '127.0.0.1') : address.address;
    const scheme = this.#config.tlsCertFile === '' ? 'http' : 'https';
    const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
    if (wildcard) this.#log.warn({ publicUrl: url }, 'listening on a wildcard address without GEO_SFU_AGENT_PUBLIC_URL: advertising a loopback URL only this host can reach');
    return url;
  }

  async #nodeRegistration(): Promise<NodeRegistration> {
    const rtpCapabilities = await this.#rtpCapabilities?.();
    return {
      nodeId: this.nodeId,
      region: this.region,
      controlUrl: this.#publicUrl,
      signalingUrl: this.#publicUrl,
      probeUrl: `${this.#publicUrl}/probe`,
      maxParticipants: this.maxParticipants,
      version: this.#settings.version,
      ...(rtpCapabilities ? { rtpCapabilities } : {}),
    };
  }

  async #register(): Promise<void> {
    let retryMs = this.#config.agentRegisterRetryMs;
    for (let attempt = 1; !this.#leaving; attempt++) {
      try {
        const ack = await this.#router.register(await this.#nodeRegistration());
        this.#registered = true;
        this.#acknowledged(ack);
        this.#log.info({ attempt, peers: ack.peers.length, routerUrl: this.#config.routerUrl }, 'registered with the router');
        this.emit('registered', ack);
        if (!this.#leaving) this.#heartbeats.start();
        return;
      } catch (err) {
        // Jitter, so agents that lost the same router do not all come back in the same instant.
        const delayMs = Math.round(retryMs * (0.8 + 0.4 * Math.random()));
        // An agent often starts before its router listens (a cluster starting, a router restarting):
        // a warning once the retries have backed off to GEO_SFU_AGENT_REGISTER_RETRY_MAX_MS.
        const details = { attempt, retryInMs: delayMs, err: (err as Error).message };
        if (retryMs < this.#config.agentRegisterRetryMaxMs) this.#log.info(details, 'the router does not answer yet; registering again soon');
        else this.#log.warn(details, 'registration failed; retrying');
        await this.#pause(delayMs);
        retryMs = Math.min(retryMs * 2, this.#config.agentRegisterRetryMaxMs);
      }
    }
  }

  async #heartbeat(): Promise<void> {
    const [load, report] = await Promise.all([this.#sampler.sample(), this.#reportProvider?.().catch((err: unknown) => this.#log.debug({ err }, 'media report failed'))]);
    this.#lastLoad = load;
    const heartbeat: Heartbeat = fitHeartbeat({
      nodeId: this.nodeId,
      seq: this.#seq++,
      load,
      draining: this.#draining,
      cordoned: this.#cordoned,
      maxParticipants: this.maxParticipants,
      peerRtt: this.#prober.rtt(),
      ...(report?.quality && report.quality.length > 0 ? { quality: report.quality.slice(0, 10_000) } : {}),
      ...(report?.media ? { media: { ...report.media, links: report.media.links.slice(0, 1_000) } } : {}),
      ...(report?.reconnecting && report.reconnecting.length > 0 ? { reconnecting: report.reconnecting.slice(0, 1_000) } : {}),
    });
    let ack: HeartbeatAck;
    try {
      ack = await this.#router.heartbeat(heartbeat);
    } catch (err) {
      this.#heartbeatFailures++;
      this.#consecutiveFailures++;
      this.#log.warn({ seq: heartbeat.seq, consecutiveFailures: this.#consecutiveFailures, err: (err as Error).message }, 'heartbeat missed');
      this.emit('heartbeatfailure', heartbeat, err as Error);
      return;
    }
    this.#consecutiveFailures = 0;
    if (!ack.known) {
      if (this.#leaving) return;
      this.#log.warn('the router does not know this node (it restarted or forgot it): registering again');
      this.#registered = false;
      // Not awaited: this run is what stop() would wait for.
      void this.#heartbeats.stop();
      this.#registration = this.#register();
      return;
    }
    this.#acknowledged(ack);
    this.emit('heartbeat', heartbeat, ack);
  }

  #acknowledged(ack: HeartbeatAck): void {
    this.#lastAckAt = this.#now();
    this.#prober.setPeers(ack.peers);
  }

  async #drain(): Promise<void> {
    this.#log.info({ deadlineMs: this.#config.drainDeadlineMs }, 'draining: taking no new rooms');
    this.emit('draining');
    const announced = this.#heartbeats.runNow();
    const remaining = await this.#waitUntilEmpty();
    if (remaining > 0) this.#log.warn({ participants: remaining }, 'drain deadline reached with participants still connected');
    this.#leaving = true;
    this.#stopWaiting.abort();
    await this.#registration;
    // The router hears draining:true even when the node emptied at once, and no heartbeat can
    // land after the deregistration (the router would answer known:false).
    await announced;
    await this.#heartbeats.stop();
    if (this.#registered) {
      try {
        await this.#router.deregister(this.nodeId);
        this.#registered = false;
        this.#log.info('deregistered from the router');
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'deregistration failed; the router will find the node dead');
      }
    }
    await this.close();
  }

  /** Resolves with the participants left: 0, or more when the deadline passed first. */
  async #waitUntilEmpty(): Promise<number> {
    const deadline = performance.now() + this.#config.drainDeadlineMs;
    for (;;) {
      const { participants } = await this.#loadProvider();
      const remainingMs = deadline - performance.now();
      if (participants === 0 || remainingMs <= 0 || this.#stopWaiting.signal.aborted) return participants;
      await this.#pause(Math.min(this.#config.agentDrainCheckMs, remainingMs));
    }
  }

  #pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.#stopWaiting.signal }).catch(() => undefined);
  }

  async #release(): Promise<void> {
    this.#closed = true;
    this.#leaving = true;
    this.#stopWaiting.abort();
    await Promise.all([this.#heartbeats.stop(), this.#prober.close()]);
  }
}
