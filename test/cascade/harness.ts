/**
 * Cascade test bed: in-process "agents" (a WorkerPool + RoomRouter + the cascade routes on a real
 * fastify app each), a stub of the router's room-nodes answer computed from where participants
 * really are, and a RelayMesh putting a delaying UDP relay on every pipe.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { types as ms } from 'mediasoup';

import { cascadeTiming, pipeConditionerSettings, registerCascade, type Cascade, type ConditionerSettings, type EndpointRewrite } from '../../region-agent/cascade/index.ts';
import { configWith } from '../../shared/config/index.ts';
import { controlCall, controlPlane } from '../../shared/control-plane.ts';
import { AJV_OPTIONS, errorReplies } from '../../shared/http.ts';
import type { NodeState, RoomNode, RoomNodeSet } from '../../shared/schemas/index.ts';
import { keepRawJsonBody } from '../../shared/signed-http.ts';
import { RoomRouter, WorkerPool, type Peer, type Room } from '../../sfu/index.ts';
import { MediaSender, UdpEndpoint, opusRtpParameters, rtpPacket, OPUS_PT, vp8RtpParameters, waitUntil } from '../sfu/helpers/rtp.ts';

export const SECRET = 'cascade-test-secret-0123456789abcdef0123456789';

export interface ClusterOptions {
  enableSrtp?: boolean;
  enableRtx?: boolean;
  /** The pipe conditioner; default: the configuration's default (GEO_SFU_PIPE_FEC_SHARE, GEO_SFU_PIPE_REORDER_MAX_MS). */
  conditioner?: ConditionerSettings;
  /** Per node, over `conditioner` (a mismatch between two nodes). */
  conditionerOf?: (nodeId: string) => ConditionerSettings | undefined;
  rewrite?: EndpointRewrite;
  pollIntervalMs?: number;
  syncIntervalMs?: number;
  staleAfterMs?: number;
  /** The stub router pushes a room's node set to its nodes after each Participant.join (default true). */
  push?: boolean;
  /** CascadeTiming.prewarmMs (default: the configuration's). */
  prewarmMs?: number;
  /** Called on each agent's app before it listens (hooks for tests). */
  configureApp?: (nodeId: string, app: FastifyInstance) => void;
}

/** Where participants are, as the router would answer room-nodes. */
export class Cluster {
  readonly nodes = new Map<string, AgentNode>();
  readonly states = new Map<string, NodeState>();
  /** room-nodes queries answered. */
  queries = 0;
  /** The version of the last node set answered or pushed (each one is computed afresh: the newest). */
  version = 0;
  constructor(readonly options: ClusterOptions = {}) {}

  async add(nodeId: string, region: string): Promise<AgentNode> {
    const node = new AgentNode(this, nodeId, region);
    this.nodes.set(nodeId, node);
    await node.start();
    return node;
  }

  async roomNodes(roomIds: string[]): Promise<Map<string, RoomNodeSet>> {
    this.queries++;
    const out = new Map<string, RoomNodeSet>();
    for (const roomId of roomIds) {
      const set = this.nodeSet(roomId);
      if (set.nodes.length > 0) out.set(roomId, set);
    }
    return out;
  }

  /** Where the room's participants are now, as a new version. */
  nodeSet(roomId: string): RoomNodeSet {
    const nodes: RoomNode[] = [];
    for (const n of this.nodes.values()) {
      const room = n.rooms?.getRoom(roomId);
      if (room && !room.closed && room.peers.size > 0) {
        nodes.push({ nodeId: n.nodeId, region: n.region, controlUrl: n.url, state: this.states.get(n.nodeId) ?? 'alive' });
      }
    }
    return { version: ++this.version, nodes };
  }

  /** The router's signed push of a room's node set to the nodes serving it. */
  async push(roomId: string, set: RoomNodeSet = this.nodeSet(roomId)): Promise<void> {
    const targets = [...this.nodes.values()].filter((n) => n.cascade && set.nodes.some((x) => x.nodeId === n.nodeId));
    await Promise.allSettled(
      targets.map((n) => controlCall(controlPlane.roomNodesPush, { baseUrl: n.url, secret: SECRET, timeoutMs: 2_000, nowMs: Date.now() }, { rooms: [{ roomId, ...set }] })),
    );
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) await n.stop({ notify: false, closePool: true });
  }
}

export class AgentNode {
  pool: WorkerPool | undefined;
  rooms: RoomRouter | undefined;
  app: FastifyInstance | undefined;
  cascade: Cascade | undefined;
  url = '';
  constructor(
    readonly cluster: Cluster,
    readonly nodeId: string,
    readonly region: string,
  ) {}

  async start(): Promise<void> {
    this.pool ??= await WorkerPool.create({ numWorkers: 1 });
    this.rooms = new RoomRouter({ pool: this.pool, spread: false, activeSpeakerIntervalMs: 200 });
    // Closing a node must not wait on requests the other nodes have in flight to it (they may be
    // waiting on this node in turn): drop its connections at close, as a crashed agent would.
    const app = Fastify({ logger: false, ajv: AJV_OPTIONS, forceCloseConnections: true });
    keepRawJsonBody(app);
    await app.register(errorReplies);
    const o = this.cluster.options;
    this.cascade = await registerCascade(app, {
      rooms: this.rooms,
      nodeId: this.nodeId,
      region: this.region,
      clusterSecret: SECRET,
      signedRequestWindowMs: 30_000,
      roomNodes: (ids) => this.cluster.roomNodes(ids),
      pipe: { listenIp: '127.0.0.1', enableSrtp: o.enableSrtp ?? true, enableRtx: o.enableRtx ?? true, conditioner: o.conditionerOf?.(this.nodeId) ?? o.conditioner ?? pipeConditionerSettings(configWith()) },
      timing: {
        ...cascadeTiming(configWith(), 2_000),
        // This stub router answers polls only (no pushes): poll as often as the agents once did.
        reconcileMs: o.pollIntervalMs ?? 2_000,
        ...(o.syncIntervalMs !== undefined ? { syncIntervalMs: o.syncIntervalMs } : {}),
        ...(o.staleAfterMs !== undefined ? { staleAfterMs: o.staleAfterMs } : {}),
        ...(o.prewarmMs !== undefined ? { prewarmMs: o.prewarmMs } : {}),
      },
      ...(o.rewrite ? { rewriteRemoteEndpoint: o.rewrite } : {}),
    });
    o.configureApp?.(this.nodeId, app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    this.app = app;
  }

  /** Stops the agent; `notify: false` is a crash (the others find out by themselves). */
  async stop(opts: { notify: boolean; closePool?: boolean }): Promise<void> {
    await this.cascade?.close({ notify: opts.notify });
    await this.app?.close();
    this.rooms?.close();
    if (opts.closePool) this.pool?.close();
    this.cascade = undefined;
    this.app = undefined;
    this.rooms = undefined;
  }

  room(roomId: string): Room | undefined {
    return this.rooms?.getRoom(roomId);
  }
}

/** Send times of tagged Opus frames, by `${tag}:${frame}` (all nodes live in this process). */
export const sentAt = new Map<string, number>();

/**
 * Opus every 20 ms whose payload carries a tag and the frame number (payload bytes survive the
 * SFU and the pipes), so receivers can measure the one-way delay of each frame.
 */
export class TimedOpus {
  sent = 0;
  #timer: NodeJS.Timeout | undefined;
  constructor(
    readonly endpoint: UdpEndpoint,
    readonly port: number,
    readonly ssrc: number,
    readonly tag: number,
    readonly level: (frame: number) => number = () => 127,
  ) {}

  start(): this {
    let seq = 1000;
    let ts = 5000;
    this.#timer = setInterval(() => {
      const frame = this.sent;
      const payload = Buffer.alloc(60, 0x11);
      payload[0] = 0xfc;
      payload.writeUInt32BE(this.tag, 1);
      payload.writeUInt32BE(frame, 5);
      sentAt.set(`${this.tag}:${frame}`, performance.now());
      this.endpoint.send(rtpPacket({ payloadType: OPUS_PT, sequenceNumber: seq++, timestamp: ts, ssrc: this.ssrc, marker: frame === 0 }, payload, this.level(frame)), this.port);
      ts += 960;
      this.sent++;
    }, 20);
    return this;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Reads the tag and frame of a TimedOpus payload in an RTP packet (undefined for others). */
export function timedFrame(packet: Buffer): { tag: number; frame: number } | undefined {
  if (packet.length < 12 || (packet[1]! & 0x7f) !== OPUS_PT) return undefined;
  const cc = packet[0]! & 0x0f;
  let offset = 12 + cc * 4;
  if (packet[0]! & 0x10) offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  if (packet.length < offset + 9 || packet[offset] !== 0xfc) return undefined;
  return { tag: packet.readUInt32BE(offset + 1), frame: packet.readUInt32BE(offset + 5) };
}

let nextSsrc = 0x10000;

/**
 * A participant on one node: publishes tagged Opus + VP8 from a PlainTransport, and consumes every
 * producer of other nodes' peers (remote peers) on a PlainTransport towards a UDP receiver,
 * resuming each consumer at once (like a signaling layer would on `newProducer`).
 */
export class Participant {
  readonly consumers = new Map<string, ms.Consumer>();
  readonly delays = new Map<number, number[]>(); // tag -> one-way delays, ms
  audio: ms.Producer | undefined;
  video: ms.Producer | undefined;
  opus: TimedOpus | undefined;
  vp8: MediaSender | undefined;
  readonly audioSsrc = nextSsrc++;
  readonly videoSsrc = nextSsrc++;
  readonly tag = nextSsrc++;
  #sendPort = 0;
  #detach: (() => void) | undefined;

  private constructor(
    readonly node: AgentNode,
    readonly peer: Peer,
    readonly sender: UdpEndpoint,
    readonly receiver: UdpEndpoint,
    readonly recvTransport: ms.PlainTransport,
  ) {}

  /**
   * `consume`: 'remote' (default) consumes the producers of other nodes' peers; 'all' also those
   * of this node's other peers.
   */
  static async join(
    node: AgentNode,
    roomId: string,
    peerId: string,
    opts: { publish?: boolean; level?: (frame: number) => number; consume?: 'remote' | 'all' } = {},
  ): Promise<Participant> {
    const rooms = node.rooms;
    if (!rooms) throw new Error(`${node.nodeId} is stopped`);
    const room = await rooms.getOrCreateRoom(roomId);
    const peer = await rooms.join(roomId, peerId, { rtpCapabilities: room.rtpCapabilities });
    const sender = await UdpEndpoint.open();
    const receiver = await UdpEndpoint.open();
    const recvTransport = await peer.createPlainTransport();
    await peer.connectTransport(recvTransport.id, { ip: '127.0.0.1', port: receiver.port });
    const p = new Participant(node, peer, sender, receiver, recvTransport);
    // What the router does when it hears the join: the room's nodes learn its new node set.
    // (test/cascade/agent.test.ts joins through stand-ins without a cluster.)
    const cluster = node.cluster as Cluster | undefined;
    if (cluster && (cluster.options.push ?? true)) await cluster.push(roomId);
    receiver.socket.on('message', (msg) => {
      const f = timedFrame(msg);
      if (!f) return;
      const at = sentAt.get(`${f.tag}:${f.frame}`);
      if (at === undefined) return;
      let list = p.delays.get(f.tag);
      if (!list) p.delays.set(f.tag, (list = []));
      list.push(performance.now() - at);
    });
    const wanted = (owner: { remote: boolean; id: string }) => owner.id !== peerId && (owner.remote || opts.consume === 'all');
    const onNew = (owner: Peer, producer: ms.Producer) => {
      if (wanted(owner)) void p.#consume(producer);
    };
    peer.room.on('newproducer', onNew);
    p.#detach = () => peer.room.off('newproducer', onNew);
    for (const [, { producer, remote, peerId: owner }] of peer.room.producers) if (wanted({ remote, id: owner })) void p.#consume(producer);
    if (opts.publish ?? true) {
      const sendTransport = await peer.createPlainTransport({ comedia: true });
      p.#sendPort = sendTransport.tuple.localPort;
      p.audio = await peer.produce({ transportId: sendTransport.id, kind: 'audio', rtpParameters: opusRtpParameters(p.audioSsrc) });
      p.video = await peer.produce({ transportId: sendTransport.id, kind: 'video', rtpParameters: vp8RtpParameters(p.videoSsrc) });
      p.opus = new TimedOpus(sender, p.#sendPort, p.audioSsrc, p.tag, opts.level);
      p.vp8 = new MediaSender(sender, p.#sendPort);
    }
    return p;
  }

  async #consume(producer: ms.Producer): Promise<void> {
    if (this.consumers.has(producer.id) || this.peer.closed) return;
    try {
      const consumer = await this.peer.consume({ transportId: this.recvTransport.id, producerId: producer.id });
      this.consumers.set(producer.id, consumer);
      consumer.observer.once('close', () => {
        if (this.consumers.get(producer.id) === consumer) this.consumers.delete(producer.id);
      });
      await this.peer.resumeConsumer(consumer.id);
    } catch {
      // producer or peer gone meanwhile
    }
  }

  startMedia(): void {
    this.opus?.start();
    this.vp8?.startVp8(this.videoSsrc, 10);
  }

  stopMedia(): void {
    this.opus?.stop();
    this.vp8?.stop();
  }

  get sent(): { audio: number; video: number } {
    return { audio: this.opus?.sent ?? 0, video: this.vp8?.sent.video ?? 0 };
  }

  /** The consumer of `producerId` and the packets it delivered to our receiver so far. */
  received(producerId: string): number {
    const consumer = this.consumers.get(producerId);
    const ssrc = consumer?.rtpParameters.encodings?.[0]?.ssrc;
    return ssrc === undefined ? 0 : this.receiver.rtpOf(ssrc).length;
  }

  async waitConsuming(producerIds: string[], timeoutMs = 10_000): Promise<void> {
    await waitUntil(() => producerIds.every((id) => this.consumers.has(id)), timeoutMs, `${this.peer.id} consuming ${producerIds.length} producers`);
  }

  leave(): void {
    this.stopMedia();
    this.#detach?.();
    this.peer.close();
    this.sender.close();
    this.receiver.close();
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] ?? NaN);
};
