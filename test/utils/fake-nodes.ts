import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CascadeLinkMedia, type Heartbeat, type HeartbeatAck, type InventoryRoom, type MoveRequest, type NodeLoad, type NodeRegistration, type ParticipantQuality, type RoomNodesOfRoom, type RoomNodesPush, type RttStats } from '../../shared/schemas/index.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { NonceCache, verifySignedRequest } from '../../shared/signed-request.ts';
import { controlPlane as cp } from '../../shared/control-plane.ts';

/**
 * Registers scripted nodes with a router through its real, signed control API and heartbeats for
 * them with whatever load, state and inter-region RTTs a test sets. For router tests that need
 * exact load figures; the region-agent tests cover the real agent.
 */
export interface FakeNodeSpec {
  nodeId: string;
  region: string;
  maxParticipants?: number;
  load?: Partial<NodeLoad>;
  draining?: boolean;
  cordoned?: boolean;
  /** Registered as the node's SFU RTP capabilities (an agent with an SFU registers its own). */
  rtpCapabilities?: NodeRegistration['rtpCapabilities'];
}

interface FakeNode {
  spec: FakeNodeSpec;
  seq: number;
  beating: boolean;
  peerRtt: Record<string, RttStats>;
  quality: ParticipantQuality[];
  /** The cascade links the node reports (e.g. a real Cascade's linkMedia()), read at each heartbeat. */
  links?: () => Promise<CascadeLinkMedia[]>;
}

const ZERO_LOAD: NodeLoad = { cpu: 0, memory: 0, participants: 0, rooms: 0, transports: 0, producers: 0, consumers: 0, workers: 1 };

export class FakeNodes {
  readonly #nodes = new Map<string, FakeNode>();
  readonly #probeServer: http.Server;
  /** Each node's control URL (one server per node, so a test sees which node a call reached). */
  readonly #controlServers = new Map<string, http.Server>();
  readonly #nonces = new NonceCache(30_000);
  #timer: NodeJS.Timeout | null = null;
  /** The timer's heartbeat rounds still under way. */
  readonly #beating = new Set<Promise<void>>();
  probeUrl = '';
  /** Signed move requests received (live rebalancing), in order. */
  readonly moves: MoveRequest[] = [];
  /** Called for every verified move request (e.g. to act as the moved participant's SDK). */
  onMove: ((move: MoveRequest) => void) | null = null;
  /** The rooms' node sets in the signed pushes received, with the node each reached, in order (a push of several rooms: one entry each). */
  readonly pushes: Array<{ nodeId: string; push: RoomNodesOfRoom }> = [];
  /** Signed push calls received, by node. */
  readonly pushCalls = new Map<string, number>();
  /** Off: pushes are verified and answered but not kept (a benchmark's thousands would pile up). */
  recordPushes = true;
  /** How long a node takes to answer a push (a slow or far agent). */
  pushAnswerDelayMs = 0;
  /** Each node's answer to the router's signed inventory call (none set: the call is answered 204, as by an agent without signaling). */
  readonly inventories = new Map<string, InventoryRoom[]>();

  constructor(
    private readonly routerUrl: string,
    private readonly secret: string,
  ) {
    this.#probeServer = http.createServer(this.#control(null));
  }

  /**
   * A node's control URL: a signed move request is recorded, 202; a signed room node-set push is
   * recorded, 204; anything else (the probe, session closes) answers 204.
   */
  #control(nodeId: string | null): http.RequestListener {
    return (req, res) => {
      const path = req.url ?? '';
      const inventory = nodeId === null ? undefined : this.inventories.get(nodeId);
      if (req.method !== 'POST' || (path !== cp.move.path && path !== cp.roomNodesPush.path && !(path === cp.inventory.path && inventory))) {
        res.statusCode = 204;
        res.end();
        return;
      }
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const failure = verifySignedRequest(this.secret, { method: 'POST', path, body }, req.headers, Date.now(), 30_000, this.#nonces);
        if (failure) {
          res.statusCode = 401;
          res.end();
          return;
        }
        if (path === cp.inventory.path) {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ nodeId, rooms: inventory }));
          return;
        }
        if (path === cp.roomNodesPush.path) {
          this.pushCalls.set(nodeId ?? '', (this.pushCalls.get(nodeId ?? '') ?? 0) + 1);
          if (this.recordPushes) for (const push of (JSON.parse(body) as RoomNodesPush).rooms) this.pushes.push({ nodeId: nodeId ?? '', push });
          res.statusCode = 204;
          setTimeout(() => res.end(), this.pushAnswerDelayMs);
          return;
        }
        const move = JSON.parse(body) as MoveRequest;
        this.moves.push(move);
        this.onMove?.(move);
        res.statusCode = 202;
        res.end();
      });
    };
  }

  async start(heartbeatIntervalMs: number): Promise<void> {
    await new Promise<void>((r) => this.#probeServer.listen(0, '127.0.0.1', r));
    this.probeUrl = `http://127.0.0.1:${(this.#probeServer.address() as AddressInfo).port}/probe`;
    this.#timer = setInterval(() => {
      const round = this.heartbeatAll()
        .catch(() => undefined)
        .finally(() => this.#beating.delete(round));
      this.#beating.add(round);
    }, heartbeatIntervalMs);
  }

  async add(spec: FakeNodeSpec): Promise<HeartbeatAck> {
    const control = http.createServer(this.#control(spec.nodeId));
    await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
    this.#controlServers.get(spec.nodeId)?.close();
    this.#controlServers.set(spec.nodeId, control);
    const registration: NodeRegistration = {
      nodeId: spec.nodeId,
      region: spec.region,
      controlUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
      signalingUrl: `http://127.0.0.1:1/${spec.nodeId}`,
      probeUrl: this.probeUrl,
      maxParticipants: spec.maxParticipants ?? 100,
      version: 'test',
      ...(spec.rtpCapabilities ? { rtpCapabilities: spec.rtpCapabilities } : {}),
    };
    const res = await this.#call<HeartbeatAck>('/v1/nodes/register', registration);
    if (res.statusCode !== 200) throw new Error(`register ${spec.nodeId}: ${res.statusCode} ${JSON.stringify(res.body)}`);
    this.#nodes.set(spec.nodeId, { spec, seq: 0, beating: true, peerRtt: {}, quality: [] });
    await this.heartbeat(spec.nodeId);
    return res.body;
  }

  /** Changes what the node reports from its next heartbeat on. */
  set(nodeId: string, patch: Partial<Omit<FakeNodeSpec, 'nodeId' | 'region'>>): void {
    const node = this.#nodes.get(nodeId)!;
    node.spec = { ...node.spec, ...patch, load: { ...node.spec.load, ...patch.load } };
  }

  /** Sets the inter-region RTT this node reports to a peer. */
  setPeerRtt(nodeId: string, peerId: string, rttMs: number): void {
    this.#nodes.get(nodeId)!.peerRtt[peerId] = { rttMs, medianMs: rttMs, jitterMs: 0, loss: 0, samples: 10 };
  }

  /** Sets the per-participant media quality the node reports. */
  setQuality(nodeId: string, quality: ParticipantQuality[]): void {
    this.#nodes.get(nodeId)!.quality = quality;
  }

  /** Sets what the node reports of its cascade links, read at each heartbeat (its media part). */
  setLinks(nodeId: string, links: () => Promise<CascadeLinkMedia[]>): void {
    this.#nodes.get(nodeId)!.links = links;
  }

  /** Stops heartbeating for the node, as if it died. */
  silence(nodeId: string): void {
    this.#nodes.get(nodeId)!.beating = false;
  }

  /** Heartbeats for the node again. */
  resume(nodeId: string): void {
    this.#nodes.get(nodeId)!.beating = true;
  }

  async heartbeat(nodeId: string): Promise<HeartbeatAck> {
    const node = this.#nodes.get(nodeId)!;
    const hb: Heartbeat = {
      nodeId,
      seq: ++node.seq,
      load: { ...ZERO_LOAD, ...node.spec.load },
      draining: node.spec.draining ?? false,
      cordoned: node.spec.cordoned ?? false,
      maxParticipants: node.spec.maxParticipants ?? 100,
      peerRtt: node.peerRtt,
      ...(node.quality.length > 0 ? { quality: node.quality } : {}),
    };
    if (node.links) {
      const links = await node.links();
      hb.media = { inBps: links.reduce((n, l) => n + l.inBps, 0), outBps: links.reduce((n, l) => n + l.outBps, 0), links };
    }
    const res = await this.#call<HeartbeatAck>('/v1/nodes/heartbeat', hb);
    if (res.statusCode !== 200) throw new Error(`heartbeat ${nodeId}: ${res.statusCode}`);
    return res.body;
  }

  async heartbeatAll(): Promise<void> {
    await Promise.all([...this.#nodes.values()].filter((n) => n.beating).map((n) => this.heartbeat(n.spec.nodeId)));
  }

  #call<T>(path: string, body: unknown) {
    return signedCall<T>({ secret: this.secret, baseUrl: this.routerUrl, method: 'POST', path, body, timeoutMs: 5_000 });
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    // A heartbeat still under way when the router closes leaves its connection to the router open
    // in keep-alive (the router's 72 s, as the response advertises): the router's close would wait for it.
    await Promise.all(this.#beating);
    const servers = [this.#probeServer, ...this.#controlServers.values()];
    const closed = servers.map((server) => new Promise<void>((r) => server.close(() => r())));
    // Routers' keep-alive connections (probes, move requests) would hold the close.
    for (const server of servers) server.closeAllConnections();
    await Promise.all(closed);
  }
}
