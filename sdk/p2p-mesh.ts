import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { RelayAck, RelayClientEvents, RelayForwarded, RelayServerEvents, RelaySignal } from '../shared/p2p-relay.ts';
import { type LocalTrack, SignalingError } from './edge-session.ts';
import type { P2pAllocation } from './router-api.ts';

/**
 * The P2P fallback's media: one RTCPeerConnection per other participant (full mesh), offers,
 * answers and ICE candidates relayed by the router (shared/p2p-relay.ts). Uses only the WebRTC and
 * socket.io-client APIs, so it runs in browsers and, with a WebRTC implementation installed as
 * globals (installWebRtc), in Node.
 *
 * Negotiation: the newcomer offers to every participant already there (the relay's `welcome`
 * lists them); later changes (publish, unpublish) renegotiate from either side, with the "perfect
 * negotiation" rule on a collision (the side with the greater id is polite and rolls back).
 */

export interface P2pRemoteTrack {
  peerId: string;
  /** `p2p:<peerId>:<mid>`: stable while the link lives. */
  id: string;
  kind: 'audio' | 'video';
  track: MediaStreamTrack;
}

export interface P2pMeshHooks {
  onPeerJoined(peerId: string): void;
  onPeerLeft(peerId: string): void;
  onTrack(track: P2pRemoteTrack): void;
  /** The link to `peerId` closed: its tracks are gone. */
  onLinkClosed(peerId: string, trackIds: string[]): void;
  onLinkState(peerId: string, state: string): void;
  /** The relay says a region can take the room again: allocate and move to the SFU. */
  onMigrate(reason: string): void;
  onError(error: Error): void;
}

export interface P2pMeshOptions {
  allocation: P2pAllocation;
  routerUrl: string;
  hooks: P2pMeshHooks;
  /** This participant's tracks (the room's, kept across modes). */
  localTracks: () => LocalTrack[];
  /** Until the relay's `welcome`, ms. Default 5 000. */
  connectTimeoutMs?: number;
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

type RelaySocket = Socket<RelayServerEvents, RelayClientEvents>;

/** Relay refusals after which the same token will never work. */
const FATAL_RELAY_CODES = new Set(['BAD_AUTH', 'TOKEN_MALFORMED', 'TOKEN_UNKNOWN_KEY', 'TOKEN_BAD_SIGNATURE', 'TOKEN_EXPIRED', 'TOKEN_WRONG_AUDIENCE', 'NOT_P2P', 'NOT_IN_ROOM']);

class PeerLink {
  readonly pc: RTCPeerConnection;
  readonly #polite: boolean;
  /** Local track id → its sender on this link. */
  readonly senders = new Map<string, RTCRtpSender>();
  readonly trackIds = new Set<string>();
  #queue: Promise<void> = Promise.resolve();
  #ignoreOffer = false;
  readonly #pendingCandidates: RTCIceCandidateInit[] = [];
  #closed = false;

  constructor(
    readonly peerId: string,
    selfId: string,
    iceServers: RTCIceServer[],
    private readonly send: (signal: Omit<RelaySignal, 'to'>) => void,
    private readonly hooks: P2pMeshHooks,
  ) {
    this.#polite = selfId > peerId;
    this.pc = new RTCPeerConnection({ iceServers });
    this.pc.onicecandidate = (e) => {
      const c = e.candidate;
      if (c && c.candidate) this.send({ candidate: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } });
    };
    this.pc.ontrack = (e) => {
      const id = `p2p:${peerId}:${e.transceiver?.mid ?? e.track.id}`;
      if (this.trackIds.has(id) || (e.track.kind !== 'audio' && e.track.kind !== 'video')) return;
      this.trackIds.add(id);
      hooks.onTrack({ peerId, id, kind: e.track.kind, track: e.track });
    };
    this.pc.onconnectionstatechange = () => hooks.onLinkState(peerId, this.pc.connectionState);
  }

  /** Sends the local tracks not sent on this link yet (reusing a transceiver of the same kind that does not send). */
  addLocals(locals: LocalTrack[]): void {
    for (const local of locals) {
      if (this.senders.has(local.localId)) continue;
      this.senders.set(local.localId, this.pc.addTrack(local.track));
      // Nobody awaits this: a connection closed meanwhile has nothing left to pause.
      if (local.paused) this.senders.get(local.localId)!.replaceTrack(null).catch(() => undefined);
    }
  }

  removeLocal(localId: string): void {
    const sender = this.senders.get(localId);
    if (!sender) return;
    this.senders.delete(localId);
    this.pc.removeTrack(sender);
  }

  /** As the offerer: our tracks, plus a receive-only transceiver for a kind we do not send (so the other side can). */
  offerWith(locals: LocalTrack[]): void {
    this.addLocals(locals);
    for (const kind of ['audio', 'video'] as const) {
      if (!locals.some((l) => l.track.kind === kind)) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
    this.negotiate();
  }

  negotiate(): void {
    this.#enqueue(async () => {
      if (this.pc.signalingState !== 'stable') return;
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      this.send({ description: { type: 'offer', sdp: this.pc.localDescription!.sdp } });
    });
  }

  handle(msg: RelayForwarded, locals: () => LocalTrack[]): void {
    this.#enqueue(async () => {
      const { description, candidate } = msg;
      if (description) {
        const collision = description.type === 'offer' && this.pc.signalingState !== 'stable';
        this.#ignoreOffer = !this.#polite && collision;
        if (this.#ignoreOffer) return;
        if (collision) await this.pc.setLocalDescription({ type: 'rollback' });
        await this.pc.setRemoteDescription(description);
        for (const c of this.#pendingCandidates.splice(0)) await this.pc.addIceCandidate(c).catch(() => undefined);
        if (description.type !== 'offer') return;
        this.addLocals(locals());
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.send({ description: { type: 'answer', sdp: this.pc.localDescription!.sdp } });
        // A track the offer had no room for, or our own offer rolled back: offer again.
        const unsent = this.pc.getTransceivers().some((t) => t.sender.track && t.mid === null);
        if (unsent || collision) this.negotiate();
      } else if (candidate) {
        if (!this.pc.remoteDescription) this.#pendingCandidates.push(candidate);
        else
          await this.pc.addIceCandidate(candidate).catch((err: Error) => {
            if (!this.#ignoreOffer) throw err;
          });
      }
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.pc.close();
  }

  /** One step at a time: descriptions and candidates apply in the order they came. */
  #enqueue(step: () => Promise<void>): void {
    this.#queue = this.#queue
      .then(() => (this.#closed ? undefined : step()))
      .catch((err: Error) => this.hooks.onError(new Error(`P2P link to ${this.peerId}: ${err.message}`)));
  }
}

export class P2pMesh {
  readonly allocation: P2pAllocation;
  readonly #o: P2pMeshOptions;
  #socket: RelaySocket | null = null;
  readonly #links = new Map<string, PeerLink>();
  /** Peers connected to the relay (links are made on the first offer). */
  readonly peers = new Set<string>();
  #closed = false;

  constructor(o: P2pMeshOptions) {
    this.allocation = o.allocation;
    this.#o = o;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connects to the relay; resolves once welcomed (and offers to everyone already there). */
  open(): Promise<void> {
    const { allocation, routerUrl, hooks } = this.#o;
    const socket: RelaySocket = io(routerUrl, { ...this.#o.socketOptions, path: allocation.relay.path, auth: { token: allocation.relay.token }, forceNew: true });
    this.#socket = socket;
    socket.on('peerJoined', ({ peerId }) => {
      if (this.peers.has(peerId)) return;
      this.peers.add(peerId);
      hooks.onPeerJoined(peerId);
    });
    socket.on('peerLeft', ({ peerId }) => {
      this.peers.delete(peerId);
      this.dropPeer(peerId);
      hooks.onPeerLeft(peerId);
    });
    socket.on('signal', (msg) => {
      if (!this.peers.has(msg.from)) {
        this.peers.add(msg.from);
        hooks.onPeerJoined(msg.from);
      }
      this.#link(msg.from).handle(msg, this.#o.localTracks);
    });
    socket.on('migrate', ({ reason }) => hooks.onMigrate(reason));
    let welcomed = false;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new SignalingError('CONNECT_TIMEOUT', 'the P2P relay did not welcome us in time')), this.#o.connectTimeoutMs ?? 5_000);
      const fail = (err: SignalingError) => {
        clearTimeout(timer);
        this.close();
        reject(err);
      };
      socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
        const code = err.data?.code;
        const fatal = code !== undefined && FATAL_RELAY_CODES.has(code);
        if (!welcomed) {
          if (fatal) fail(new SignalingError(code, err.data?.message ?? err.message));
          else if (!socket.active) fail(new SignalingError('CONNECT_FAILED', err.message));
          return;
        }
        // Reconnecting after a drop. The direct links do not need the relay to carry media.
        if (!fatal) return;
        socket.disconnect();
        // The room left P2P mode while we were away (we missed `migrate`): move now.
        if (code === 'NOT_P2P') hooks.onMigrate('room_on_sfu');
        else hooks.onError(new SignalingError(code, `the P2P relay refused to take us back: ${err.data?.message ?? err.message}; the direct links stay, but no new peer can reach us`));
      });
      socket.on('welcome', ({ peers }) => {
        welcomed = true;
        clearTimeout(timer);
        for (const peerId of peers) {
          if (!this.peers.has(peerId)) {
            this.peers.add(peerId);
            hooks.onPeerJoined(peerId);
          }
          // After a relay reconnect the links may still be there: only new peers get an offer.
          if (!this.#links.has(peerId)) this.#link(peerId).offerWith(this.#o.localTracks());
        }
        resolve();
      });
    });
  }

  /** Sends a newly published track to everyone. */
  publish(local: LocalTrack): void {
    for (const link of this.#links.values()) {
      link.addLocals([local]);
      link.negotiate();
    }
  }

  unpublish(localId: string): void {
    for (const link of this.#links.values()) {
      link.removeLocal(localId);
      link.negotiate();
    }
  }

  /** Pausing sends nothing for the track (its sender carries no track) without renegotiating. */
  async setPaused(local: LocalTrack, paused: boolean): Promise<void> {
    await Promise.all([...this.#links.values()].map((l) => l.senders.get(local.localId)?.replaceTrack(paused ? null : local.track)));
  }

  /** Closes the link to one peer (its tracks reported gone), e.g. once that peer is received through the SFU. */
  dropPeer(peerId: string): void {
    const link = this.#links.get(peerId);
    if (!link) return;
    this.#links.delete(peerId);
    link.close();
    this.#o.hooks.onLinkClosed(peerId, [...link.trackIds]);
  }

  get linkedPeers(): string[] {
    return [...this.#links.keys()];
  }

  /** Every link's peer-connection stats in one report (ids prefixed with the peer id). */
  async getStats(): Promise<RTCStatsReport> {
    const merged = new Map<string, unknown>();
    for (const [peerId, link] of this.#links) {
      const report = await link.pc.getStats();
      report.forEach((stat: { id: string }) => merged.set(`${peerId}:${stat.id}`, stat));
    }
    return merged as unknown as RTCStatsReport;
  }

  /** Leaves the relay and closes every link. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket?.disconnect();
    for (const peerId of [...this.#links.keys()]) this.dropPeer(peerId);
  }

  #link(peerId: string): PeerLink {
    let link = this.#links.get(peerId);
    if (!link) {
      const send = (signal: Omit<RelaySignal, 'to'>) => {
        this.#socket?.emit('signal', { to: peerId, ...signal }, (ack: RelayAck) => {
          if (!ack.ok && !this.#closed) this.#o.hooks.onError(new SignalingError(ack.error.code, `P2P relay refused a message to ${peerId}: ${ack.error.message}`, ack.error.field));
        });
      };
      link = new PeerLink(peerId, this.allocation.participantId, this.allocation.iceServers as RTCIceServer[], send, this.#o.hooks);
      this.#links.set(peerId, link);
    }
    return link;
  }
}
