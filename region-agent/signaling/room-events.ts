import type { PeerInfoMessage, ProducerInfoMessage, ServerEvents, SessionSnapshot } from '../../shared/signaling.ts';
import type { Peer, PeerOrigin, Room, RoomCloseReason, types as ms } from '../../sfu/index.ts';
import { send, type Session, type Sessions } from './sessions.ts';

export interface RoomEventsOptions {
  sessions: Sessions;
  /** This agent's region: where the participants of this node are. */
  region: string;
  /** A joined session's SFU peer closed under it (its room closed, with this reason). */
  onPeerLost: (session: Session, reason: RoomCloseReason | undefined) => void;
}

/**
 * Room event fan-out: what happens in an SFU room (peers, producers, active speaker) is sent to
 * the room's connected sessions, what happens to a peer's consumers to that peer's session.
 */
export class RoomEvents {
  readonly #o: RoomEventsOptions;
  readonly #wiredRooms = new WeakSet<Room>();
  /** Remote peers (participants of other nodes, seen through region pipes) whose leaving is announced. */
  readonly #wiredRemotePeers = new WeakSet<Peer>();
  readonly #roomCloseReasons = new WeakMap<Room, RoomCloseReason>();

  constructor(options: RoomEventsOptions) {
    this.#o = options;
  }

  /** A session joined with this peer: its room's and its own events reach it from now on. */
  joined(session: Session, peer: Peer): void {
    this.#wireRoom(peer.room);
    this.#wirePeer(session, peer);
  }

  /** Sends an event to every connected session of the room but one peer's. */
  toRoom<E extends keyof ServerEvents>(room: Room, exceptPeerId: string | null, event: E, ...args: Parameters<ServerEvents[E]>): void {
    for (const s of this.#o.sessions.all()) {
      if (s.peer?.room === room && s.peerId !== exceptPeerId && s.socket) send(s.socket, event, ...args);
    }
  }

  /** What a (resumed or joining) peer sees of its room and holds itself. */
  snapshot(peer: Peer): SessionSnapshot {
    const room = peer.room;
    const peers: PeerInfoMessage[] = [...room.peers.values()].filter((p) => p !== peer).map((p) => this.#peerInfo(p));
    const producers: ProducerInfoMessage[] = [...room.producers.values()]
      .filter(({ peerId }) => peerId !== peer.id)
      .map(({ producer, peerId, remote }) => this.#producerInfo(peerId, producer, remote ? room.remotePeers.get(peerId)?.origin : undefined));
    return {
      peers,
      producers,
      transports: [...peer.transports.values()].map((t) => ({ transportId: t.id, direction: (t.appData as { direction?: 'send' | 'recv' }).direction ?? 'send' })),
      producerIds: [...peer.producers.keys()],
      consumers: [...peer.consumers.values()].map((c) => ({ consumerId: c.id, producerId: c.producerId })),
    };
  }

  #peerInfo(peer: Peer): PeerInfoMessage {
    const displayName = peer.appData.displayName;
    return { peerId: peer.id, region: peer.origin?.region ?? this.#o.region, ...(typeof displayName === 'string' ? { displayName } : {}) };
  }

  /** `origin`: where a producer piped in from another region was published (its publisher's edge). */
  #producerInfo(peerId: string, producer: ms.Producer, origin?: PeerOrigin): ProducerInfoMessage {
    return { producerId: producer.id, peerId, kind: producer.kind, paused: producer.paused, region: origin?.region ?? this.#o.region };
  }

  #wireRoom(room: Room): void {
    if (this.#wiredRooms.has(room)) return;
    this.#wiredRooms.add(room);
    room.on('peerjoined', (peer) => this.toRoom(room, peer.id, 'peerJoined', this.#peerInfo(peer)));
    room.on('peerleft', (peer) => this.#peerLeft(room, peer));
    room.on('newproducer', (peer, producer) => {
      // A participant of another node is known here by its piped producers: it leaves when the
      // room drops it (its last producer closed, or it moved to another node).
      if (peer.origin && !this.#wiredRemotePeers.has(peer)) {
        this.#wiredRemotePeers.add(peer);
        peer.once('close', () => this.#peerLeft(room, peer));
      }
      this.toRoom(room, peer.id, 'newProducer', this.#producerInfo(peer.id, producer, peer.origin));
    });
    room.on('producerclose', (peer, producer) => this.toRoom(room, peer.id, 'producerClosed', { producerId: producer.id }));
    room.on('activespeaker', (msg) => this.toRoom(room, null, 'activeSpeaker', msg));
    room.once('close', (reason) => this.#roomCloseReasons.set(room, reason));
  }

  /**
   * One presence of a participant left the room. While it moves between nodes (make-before-break)
   * a participant is here twice for a while, local and remote (its producers piped from the other
   * node): the presence that goes closes only its own producers (`producerClosed`), and the room
   * hears `peerLeft` only when no presence is left, else clients would drop the other one's tracks.
   */
  #peerLeft(room: Room, peer: Peer): void {
    const local = room.getPeer(peer.id);
    const remote = room.remotePeers.get(peer.id);
    const stays = [local, remote].some((p) => p !== undefined && p !== peer && !p.closed);
    if (!stays) this.toRoom(room, peer.id, 'peerLeft', { peerId: peer.id });
  }

  #wirePeer(session: Session, peer: Peer): void {
    const toPeer = <E extends keyof ServerEvents>(event: E, ...args: Parameters<ServerEvents[E]>) => {
      if (session.peer === peer && session.socket) send(session.socket, event, ...args);
    };
    peer.on('consumerclose', (consumer) => toPeer('consumerClosed', { consumerId: consumer.id, producerId: consumer.producerId }));
    // Producers of this room's peers are announced to the whole room by the pause/resume requests;
    // the consumer-level events cover producers that come from elsewhere (piped in).
    const local = (producerId: string) => peer.room.producers.has(producerId);
    peer.on('consumerproducerpause', (c) => local(c.producerId) || toPeer('producerPaused', { producerId: c.producerId }));
    peer.on('consumerproducerresume', (c) => local(c.producerId) || toPeer('producerResumed', { producerId: c.producerId }));
    peer.once('close', () => {
      if (session.peer !== peer || session.ended) return; // closed by us
      // Closed under us (its room closed); the room's close reason is known once Room.close() returns.
      setImmediate(() => {
        if (session.peer !== peer || session.ended) return;
        this.#o.onPeerLost(session, this.#roomCloseReasons.get(peer.room));
      });
    });
  }
}
