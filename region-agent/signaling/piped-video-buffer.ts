import type { Peer, types as ms } from '../../sfu/index.ts';
import { send, type Session, type Sessions } from './sessions.ts';

/** The jitter buffer target for the video piped in from `originNodeId` for the room, ms (the cascade's videoBufferMs). */
export type LinkVideoBuffer = (roomId: string, originNodeId: string) => number;

/** How often the targets told are checked against their links: the conditioners report every 500 ms. */
export const PIPED_VIDEO_BUFFER_REFRESH_MS = 1_000;

/**
 * Protocol 1.4: how long each participant's browser holds the video piped in from another node
 * (region-agent/cascade/README.md, "Video piped in over a lossy link"): the consumer's answer
 * carries the target of its link then (`told`), and `refresh` tells the consumers whose link's
 * target changed since (`consumerJitterBuffer`). What each session was told is kept per consumer
 * it holds, so at most one entry per consumer (GEO_SFU_MAX_CONSUMERS_PER_PEER) and none beyond
 * the session.
 */
export class PipedVideoBuffers {
  readonly #told = new WeakMap<Session, Map<string, number>>();

  constructor(
    private readonly sessions: Pick<Sessions, 'all'>,
    private readonly link: LinkVideoBuffer,
  ) {}

  /** The target of a consumer just made for the session, recorded as told (the answer carries it). */
  told(session: Session, peer: Peer, consumer: ms.Consumer): number {
    const target = this.#target(peer, consumer);
    let told = this.#told.get(session);
    if (!told) this.#told.set(session, (told = new Map()));
    told.set(consumer.id, target);
    return target;
  }

  /** Tells each connected session's consumers whose target changed; forgets the consumers closed. */
  refresh(): void {
    for (const session of this.sessions.all()) {
      const told = this.#told.get(session);
      const peer = session.peer;
      if (!told || !peer) continue;
      for (const [consumerId, before] of told) {
        const consumer = peer.consumers.get(consumerId);
        if (!consumer || consumer.closed) {
          told.delete(consumerId);
          continue;
        }
        const target = this.#target(peer, consumer);
        // A session waiting for its resume is told at the first refresh after it.
        if (target === before || !session.socket) continue;
        send(session.socket, 'consumerJitterBuffer', { consumerId, producerId: consumer.producerId, jitterBufferTargetMs: target });
        told.set(consumerId, target);
      }
    }
  }

  /** Only video piped in has one: the link's; local media and audio keep the browser's own. */
  #target(peer: Peer, consumer: ms.Consumer): number {
    if (consumer.kind !== 'video') return 0;
    const entry = peer.room.producers.get(consumer.producerId);
    const origin = entry?.remote ? peer.room.remotePeers.get(entry.peerId)?.origin : undefined;
    return origin ? this.link(peer.room.id, origin.nodeId) : 0;
  }
}
