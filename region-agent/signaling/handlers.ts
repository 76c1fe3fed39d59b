import type { TrackInfo, TrackSource } from '../../shared/schemas/index.ts';
import type { RequestName, RequestPayload, ResponseData } from '../../shared/signaling.ts';
import type { Peer, types as ms } from '../../sfu/index.ts';
import type { AgentSfu } from '../sfu.ts';
import type { PeerCaps } from './client-limits.ts';
import type { PipedVideoBuffers } from './piped-video-buffer.ts';
import { Refusal } from '../../shared/errors.ts';
import { requestRefusal } from './refusals.ts';
import type { RoomEvents } from './room-events.ts';
import type { RouterReports } from './router-reports.ts';
import type { Session } from './sessions.ts';

type Direction = 'send' | 'recv';

interface DataProducerEntry {
  dataProducer: ms.DataProducer;
  roomId: string;
  router: ms.Router;
}

/** What the handlers work with: the session the request came on, and the agent's signaling parts. */
export interface RequestContext {
  readonly session: Session;
  readonly sfu: AgentSfu;
  /** This agent's region. */
  readonly region: string;
  readonly events: RoomEvents;
  readonly reports: RouterReports;
  readonly caps: PeerCaps;
  /** The agent's data producers by id (consumeData finds them across sessions). */
  readonly dataProducers: Map<string, DataProducerEntry>;
  /** The jitter buffer targets of video piped in (protocol 1.4). */
  readonly videoBuffers: PipedVideoBuffers;
}

const SOURCES: ReadonlySet<string> = new Set<TrackSource>(['camera', 'microphone', 'screen_share', 'screen_share_audio']);

/** A producer as a track of the application's webhooks: its source as the client's `appData.source` names it, its encodings as layers. */
function trackInfo(producer: ms.Producer, source: unknown): TrackInfo {
  return {
    trackId: producer.id,
    kind: producer.kind,
    source: typeof source === 'string' && SOURCES.has(source) ? (source as TrackSource) : 'unknown',
    layers: (producer.rtpParameters.encodings ?? []).slice(0, 16).map((e) => ({
      ...(typeof e.rid === 'string' ? { rid: e.rid.slice(0, 32) } : {}),
      ...(typeof e.maxBitrate === 'number' ? { maxBitrate: Math.max(0, Math.round(e.maxBitrate)) } : {}),
      ...(typeof e.scalabilityMode === 'string' ? { scalabilityMode: e.scalabilityMode.slice(0, 16) } : {}),
    })),
  };
}

type Handler<N extends RequestName> = (ctx: RequestContext, payload: RequestPayload<N>) => Promise<ResponseData[N]>;

function joined(session: Session): Peer {
  if (!session.peer) throw requestRefusal('NOT_JOINED', 'join first');
  return session.peer;
}

function transportOf(peer: Peer, transportId: string, direction?: Direction): ms.Transport {
  const t = peer.transports.get(transportId);
  if (!t) throw requestRefusal('NOT_FOUND', `transport ${transportId} not found`);
  const actual = (t.appData as { direction?: Direction }).direction;
  if (direction && actual !== direction) throw requestRefusal('WRONG_DIRECTION', `transport ${transportId} is a ${actual ?? 'non-WebRTC'} transport, not ${direction}`);
  return t;
}

/** A consumer as `consume` answers it, with its jitter buffer target when it has one. */
function consumed(consumer: ms.Consumer, jitterBufferTargetMs: number): ResponseData['consume'] {
  return {
    consumerId: consumer.id,
    producerId: consumer.producerId,
    kind: consumer.kind,
    rtpParameters: consumer.rtpParameters as unknown as Record<string, unknown>,
    producerPaused: consumer.producerPaused,
    ...(jitterBufferTargetMs > 0 ? { jitterBufferTargetMs } : {}),
  };
}

/**
 * `createWebRtcTransport { consumeAll }`: a consumer on the new transport for every producer of the
 * room but the peer's own, as `consume` makes them, within the peer's consumer cap. A producer it
 * cannot consume (closed meanwhile, codecs) is left out: the client's `consume` of it then gets the
 * reason.
 */
async function consumeAll(session: Session, peer: Peer, transportId: string, caps: PeerCaps, videoBuffers: PipedVideoBuffers): Promise<ResponseData['consume'][]> {
  const answers: ResponseData['consume'][] = [];
  const consuming = new Set([...peer.consumers.values()].map((c) => c.producerId));
  for (const { producer, peerId } of [...peer.room.producers.values()]) {
    if (peerId === peer.id || consuming.has(producer.id)) continue;
    if (!caps.hasRoomFor(peer, 'consumers')) break;
    try {
      const consumer = await peer.consume({ transportId, producerId: producer.id });
      answers.push(consumed(consumer, videoBuffers.told(session, peer, consumer)));
    } catch {
      // Left for the client's own consume, which reports why.
    }
  }
  return answers;
}

/**
 * One function per request (see ./README.md "Requests"). The mapped type makes the compiler check
 * that every request of shared/signaling.ts has its handler, and each handler's payload and answer.
 */
const handlers: { [N in RequestName]: Handler<N> } = {
  getRouterRtpCapabilities: async ({ sfu, session }) => ({ rtpCapabilities: (await sfu.routerRtpCapabilities(session.roomId)) as unknown as Record<string, unknown> }),

  join: async ({ sfu, session, events, reports, region }, p) => {
    if (session.peer) throw requestRefusal('ALREADY_JOINED', 'already joined');
    const peer = await sfu.rooms.join(session.roomId, session.peerId, {
      rtpCapabilities: p.rtpCapabilities as unknown as ms.RtpCapabilities,
      appData: p.displayName !== undefined ? { displayName: p.displayName } : {},
      ...(p.lastN !== undefined ? { lastN: p.lastN } : {}),
    });
    if (session.ended) {
      peer.close();
      throw requestRefusal('CLOSED', 'the session ended while joining');
    }
    session.peer = peer;
    events.joined(session, peer);
    session.joinedReported = true;
    reports.report(session, 'joined');
    const snapshot = events.snapshot(peer);
    return { peerId: peer.id, region, peers: snapshot.peers, producers: snapshot.producers, permissions: session.permissions };
  },

  createWebRtcTransport: async ({ session, caps, videoBuffers }, p) => {
    if (p.consumeAll && p.direction !== 'recv') throw new Refusal('INVALID_PAYLOAD', 'consumeAll is for a recv transport', 'consumeAll');
    const peer = joined(session);
    const t = await peer.createWebRtcTransport({ enableSctp: p.sctp ?? false, appData: { direction: p.direction } });
    return {
      transportId: t.id,
      iceParameters: t.iceParameters as unknown as Record<string, unknown>,
      iceCandidates: t.iceCandidates as unknown as Record<string, unknown>[],
      dtlsParameters: t.dtlsParameters as unknown as Record<string, unknown>,
      ...(t.sctpParameters ? { sctpParameters: t.sctpParameters as unknown as Record<string, unknown> } : {}),
      ...(p.consumeAll ? { consumers: await consumeAll(session, peer, t.id, caps, videoBuffers) } : {}),
    };
  },

  connectTransport: async ({ session }, p) => {
    await joined(session).connectTransport(p.transportId, { dtlsParameters: p.dtlsParameters as unknown as ms.DtlsParameters });
    return {};
  },

  restartIce: async ({ session }, p) => {
    const t = transportOf(joined(session), p.transportId);
    if (!('restartIce' in t)) throw requestRefusal('NOT_SUPPORTED', 'not a WebRTC transport');
    return { iceParameters: (await (t as ms.WebRtcTransport).restartIce()) as unknown as Record<string, unknown> };
  },

  produce: async ({ session, reports }, p) => {
    const peer = joined(session);
    transportOf(peer, p.transportId, 'send');
    const producer = await peer.produce({ transportId: p.transportId, kind: p.kind, rtpParameters: p.rtpParameters as unknown as ms.RtpParameters, ...(p.appData ? { appData: p.appData } : {}) });
    // The router turns these into the application's track webhooks.
    const track = trackInfo(producer, p.appData?.source);
    reports.track(session, 'published', track);
    producer.observer.once('close', () => reports.track(session, 'unpublished', track));
    return { producerId: producer.id };
  },

  closeProducer: async ({ session }, p) => {
    joined(session).closeProducer(p.producerId);
    return {};
  },

  pauseProducer: async ({ session, events }, p) => {
    const peer = joined(session);
    await peer.pauseProducer(p.producerId);
    events.toRoom(peer.room, peer.id, 'producerPaused', { producerId: p.producerId });
    return {};
  },

  resumeProducer: async ({ session, events }, p) => {
    const peer = joined(session);
    await peer.resumeProducer(p.producerId);
    events.toRoom(peer.room, peer.id, 'producerResumed', { producerId: p.producerId });
    return {};
  },

  consume: async ({ session, videoBuffers }, p) => {
    const peer = joined(session);
    transportOf(peer, p.transportId, 'recv');
    const consumer = await peer.consume({ transportId: p.transportId, producerId: p.producerId });
    return consumed(consumer, videoBuffers.told(session, peer, consumer));
  },

  resumeConsumer: async ({ session }, p) => {
    await joined(session).resumeConsumer(p.consumerId);
    return {};
  },

  setPreferredLayers: async ({ session }, p) => {
    await joined(session).setPreferredLayers(p.consumerId, { spatialLayer: p.spatialLayer, ...(p.temporalLayer !== undefined ? { temporalLayer: p.temporalLayer } : {}) });
    return {};
  },

  produceData: async ({ session, dataProducers, caps }, p) => {
    const peer = joined(session);
    const t = transportOf(peer, p.transportId, 'send');
    const dataProducer = await t.produceData({
      sctpStreamParameters: p.sctpStreamParameters as unknown as ms.SctpStreamParameters,
      ...(p.label !== undefined ? { label: p.label } : {}),
      ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
      appData: { peerId: peer.id },
    });
    dataProducers.set(dataProducer.id, { dataProducer, roomId: session.roomId, router: peer.router });
    dataProducer.observer.once('close', () => dataProducers.delete(dataProducer.id));
    caps.track(peer, 'dataProducers', dataProducer);
    return { dataProducerId: dataProducer.id };
  },

  consumeData: async ({ session, dataProducers, caps }, p) => {
    const peer = joined(session);
    const t = transportOf(peer, p.transportId, 'recv');
    const entry = dataProducers.get(p.dataProducerId);
    if (!entry || entry.roomId !== session.roomId || entry.dataProducer.closed) throw requestRefusal('NOT_FOUND', `data producer ${p.dataProducerId} not found in this room`);
    if (entry.router !== peer.router) throw requestRefusal('NOT_SUPPORTED', 'data channels across the workers of a room are not supported');
    const dc = await t.consumeData({ dataProducerId: p.dataProducerId });
    caps.track(peer, 'dataConsumers', dc);
    return {
      dataConsumerId: dc.id,
      dataProducerId: dc.dataProducerId,
      sctpStreamParameters: (dc.sctpStreamParameters ?? {}) as unknown as Record<string, unknown>,
      label: dc.label,
      protocol: dc.protocol,
    };
  },

  // The session ends once the answer is sent (region-agent/signaling/requests.ts).
  leave: async () => ({}),
};

/** Runs the handler of a request. */
export function handle<N extends RequestName>(ctx: RequestContext, name: N, payload: RequestPayload<N>): Promise<ResponseData[N]> {
  return (handlers[name] as Handler<N>)(ctx, payload);
}
