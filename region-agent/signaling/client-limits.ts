import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { Refusal } from '../../shared/errors.ts';
import { CAP_CODES, type RequestName } from '../../shared/signaling.ts';
import type { Peer, types as ms } from '../../sfu/index.ts';

export type CappedResource = keyof typeof CAP_CODES;

/** The request that creates one of each capped resource. */
const CREATED_BY: Partial<Record<RequestName, CappedResource>> = {
  createWebRtcTransport: 'transports',
  produce: 'producers',
  consume: 'consumers',
  produceData: 'dataProducers',
  consumeData: 'dataConsumers',
};

const SETTING: Record<CappedResource, string> = {
  transports: 'GEO_SFU_MAX_TRANSPORTS_PER_PEER',
  producers: 'GEO_SFU_MAX_PRODUCERS_PER_PEER',
  consumers: 'GEO_SFU_MAX_CONSUMERS_PER_PEER',
  dataProducers: 'GEO_SFU_MAX_DATA_PRODUCERS_PER_PEER',
  dataConsumers: 'GEO_SFU_MAX_DATA_CONSUMERS_PER_PEER',
};

/**
 * What one participant may hold on the SFU (GEO_SFU_MAX_*_PER_PEER, 0 = no limit), counted from
 * what its SFU peer holds now. A session's requests run one after another, so the check and the
 * creation that follows it cannot interleave with another of its requests.
 */
export class PeerCaps {
  readonly #limits: Record<CappedResource, number>;
  /** Data producers and consumers the signaling made on a peer's transports (the Peer does not track those). */
  readonly #data = new WeakMap<Peer, { dataProducers: Set<string>; dataConsumers: Set<string> }>();

  constructor(config: Pick<GeoSfuConfig, 'maxTransportsPerPeer' | 'maxProducersPerPeer' | 'maxConsumersPerPeer' | 'maxDataProducersPerPeer' | 'maxDataConsumersPerPeer'>) {
    this.#limits = {
      transports: config.maxTransportsPerPeer,
      producers: config.maxProducersPerPeer,
      consumers: config.maxConsumersPerPeer,
      dataProducers: config.maxDataProducersPerPeer,
      dataConsumers: config.maxDataConsumersPerPeer,
    };
  }

  /** Whether the peer may have one more of `resource`. */
  hasRoomFor(peer: Peer, resource: CappedResource): boolean {
    const limit = this.#limits[resource];
    return limit === 0 || this.held(peer, resource) < limit;
  }

  /** Refuses (with the resource's code) a request that would create one more of what the peer holds its cap of. */
  assertRoomFor(peer: Peer, request: RequestName): void {
    const resource = CREATED_BY[request];
    if (!resource || this.hasRoomFor(peer, resource)) return;
    throw new Refusal(CAP_CODES[resource], `this participant holds ${this.held(peer, resource)} ${resource}, the most allowed (${SETTING[resource]}=${this.#limits[resource]})`);
  }

  /** How many of `resource` the peer holds. */
  held(peer: Peer, resource: CappedResource): number {
    switch (resource) {
      case 'transports':
        return peer.transports.size;
      case 'producers':
        return peer.producers.size;
      case 'consumers':
        return peer.consumers.size;
      default:
        return this.#data.get(peer)?.[resource].size ?? 0;
    }
  }

  /** Counts a data producer or consumer made for `peer` until it closes. */
  track(peer: Peer, resource: 'dataProducers' | 'dataConsumers', made: ms.DataProducer | ms.DataConsumer): void {
    let data = this.#data.get(peer);
    if (!data) this.#data.set(peer, (data = { dataProducers: new Set(), dataConsumers: new Set() }));
    const ids = data[resource];
    ids.add(made.id);
    made.observer.once('close', () => ids.delete(made.id));
  }
}

/**
 * Signaling requests per connection: a token bucket refilled at GEO_SFU_SIGNALING_REQUESTS_PER_SECOND
 * that holds `burst` requests (see `requestBurst`). Buckets live as long as their socket.
 */
export class RequestLimiter<Connection extends object> {
  readonly #buckets = new WeakMap<Connection, { tokens: number; atMs: number }>();

  /** `perSecond` 0: no limit. */
  constructor(
    private readonly perSecond: number,
    readonly burst: number,
    private readonly now: () => number,
  ) {}

  /** Takes a token for one request of `connection`; false (nothing taken) when its bucket is empty. */
  admit(connection: Connection): boolean {
    if (this.perSecond === 0) return true;
    const nowMs = this.now();
    const bucket = this.#buckets.get(connection) ?? { tokens: this.burst, atMs: nowMs };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((nowMs - bucket.atMs) / 1000) * this.perSecond);
    bucket.atMs = nowMs;
    this.#buckets.set(connection, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

/**
 * The bucket's size: the SDK's join of a full room in one go. Per other participant, consume and
 * resumeConsumer for its audio and its video (4 requests); 32 for the joiner's own set-up
 * (getRouterRtpCapabilities, join, two transports and their connects, its producers, pauses, an
 * ICE restart) with room to spare. A full room is GEO_SFU_MAX_ROOM_PARTICIPANTS, or without a
 * room limit a node's GEO_SFU_MAX_PARTICIPANTS_PER_NODE.
 */
export function requestBurst(config: Pick<GeoSfuConfig, 'maxRoomParticipants' | 'maxParticipantsPerNode'>): number {
  const fullRoom = config.maxRoomParticipants > 0 ? config.maxRoomParticipants : config.maxParticipantsPerNode;
  return 4 * fullRoom + 32;
}
