/**
 * One side of a cross-region cascade link: a mediasoup PipeTransport on the room's first router,
 * paired with the PipeTransport of the same room on another node (another region's SFU).
 *
 * This is `router.pipeToRouter()` split in two halves that talk through messages instead of a
 * shared process, so the control plane (region-agent/cascade/) can carry them between agents:
 *
 * - `RegionPipe.create(room, ...)` creates the local PipeTransport; `localEndpoint` (ip, port,
 *   SRTP parameters) goes to the other side, which calls `connect()` with it, and vice versa.
 * - Export (origin side): every producer and data producer of the room's LOCAL peers is consumed
 *   on the pipe transport (`transport.consume()` / `consumeData()`), including those created
 *   later. Producers of remote peers are never exported, so a stream only crosses the link from
 *   its origin node and is never relayed onward (full mesh, no loops). `exportState()` describes
 *   them: id, kind, the pipe consumer's RTP parameters, `paused: consumer.producerPaused`, the
 *   origin peer, and the bytes sent onto the pipe so far (for the far side's stall check).
 * - Import (far side): `importState(state)` reconciles: a missing producer is produced on the pipe
 *   transport with the SAME id (`id: producer.id`), the consumer's RTP parameters and its paused
 *   state, then adopted by the room as a producer of a remote peer (`Room.adoptPipedProducer`),
 *   so `newproducer` fires and local peers consume it like a local one (in-node spread, active
 *   speaker and simulcast layers included). Pause/resume follow the origin; producers the origin
 *   no longer lists are closed. The answer (`PipeImportResult`) lists what the far side holds and
 *   which imported producers look stalled (the origin sent bytes onto the pipe, nothing arrived).
 * - `applyImportResult(result)` on the origin: a producer the far side held and has closed on its
 *   own has its pipe consumer closed (close is forwarded both ways).
 *
 * `change` fires when the export changed (new producer, pause, resume, close) so the control plane
 * can push a new state at once. Closing the RegionPipe closes the transport, hence its pipe
 * consumers and imported producers (local consumers of those get `producerclose`).
 */
import type { types as ms } from 'mediasoup';

import { SfuError } from './errors.ts';
import type { Peer, PeerOrigin } from './peer.ts';
import type { PipedStreamRawStats } from './quality-stats.ts';
import type { Room } from './room.ts';
import { TypedEmitter } from './typed-emitter.ts';
import type { PortRange } from './worker-pool.ts';

/** Where the other side must send to. SRTP parameters are secret: carry them encrypted. */

/**
 * Audio piped in is not NACKed across the link: its retransmission comes an inter-region round
 * trip late, after the receivers have concealed the gap (browsers do not NACK audio either), so
 * asking would only spend the link's bytes, and reordering on the link would read as loss.
 */
function withoutNack(rtp: ms.RtpParameters): ms.RtpParameters {
  return { ...rtp, codecs: rtp.codecs.map((c) => ({ ...c, rtcpFeedback: (c.rtcpFeedback ?? []).filter((f) => f.type !== 'nack') })) };
}

export interface PipeEndpoint {
  ip: string;
  port: number;
  srtpParameters?: ms.SrtpParameters;
}

export interface ExportedProducer {
  producerId: string;
  /** The producing peer on the origin node. */
  peerId: string;
  kind: ms.MediaKind;
  /** The pipe consumer's RTP parameters (what is actually sent over the pipe). */
  rtpParameters: ms.RtpParameters;
  paused: boolean;
  appData: Record<string, unknown>;
  /** Bytes sent onto the pipe for this producer so far (pipe consumer's outbound byteCount). */
  byteCount: number;
}

export interface ExportedDataProducer {
  dataProducerId: string;
  peerId: string;
  sctpStreamParameters?: ms.SctpStreamParameters;
  label: string;
  protocol: string;
  appData: Record<string, unknown>;
}

/** The full state of one side's export on a link (idempotent: the far side reconciles to it). */
export interface PipeExport {
  origin: PeerOrigin;
  producers: ExportedProducer[];
  dataProducers: ExportedDataProducer[];
}

export interface PipeImportResult {
  /** Producer ids the importing side now holds from this link. */
  producers: string[];
  dataProducers: string[];
  /** Imported producers that looked stalled for `stallChecks` consecutive imports. */
  stalled: string[];
}

export interface RegionPipeOptions {
  local: PeerOrigin;
  remote: PeerOrigin;
  /** IP the pipe transport listens on. */
  listenIp: string;
  /** Address announced to the other side (NAT, 0.0.0.0 listen). Default: the listen IP. */
  announcedAddress?: string;
  portRange?: PortRange;
  /** Default true. Both sides must agree. */
  enableSrtp?: boolean;
  /** Default true. Both sides must agree. */
  enableRtx?: boolean;
  /** SCTP for data producers. Default true. Both sides must agree. */
  enableSctp?: boolean;
  /** Consecutive imports without bytes arriving (while the origin sent some) before a producer counts as stalled. Default 2. */
  stallChecks?: number;
}

export type RegionPipeCloseReason = 'closed' | 'roomclosed' | 'transportclosed';

export type RegionPipeEvents = {
  /** The export changed: push exportState() to the other side. */
  change: [];
  close: [RegionPipeCloseReason];
};

interface Export {
  consumer: ms.Consumer;
  peerId: string;
  producer: ms.Producer;
  /** The far side reported holding it at least once. */
  acked: boolean;
}

interface DataExport {
  dataConsumer: ms.DataConsumer;
  peerId: string;
  dataProducer: ms.DataProducer;
  acked: boolean;
}

interface Import {
  producer: ms.Producer;
  lastRemoteBytes: number | undefined;
  lastLocalBytes: number;
  stalledChecks: number;
}

const sumBytes = (stats: ReadonlyArray<{ type: string; byteCount?: number }>, type: string): number =>
  stats.filter((s) => s.type === type).reduce((n, s) => n + (s.byteCount ?? 0), 0);

export class RegionPipe extends TypedEmitter<RegionPipeEvents> {
  readonly room: Room;
  readonly transport: ms.PipeTransport;
  readonly local: PeerOrigin;
  readonly remote: PeerOrigin;
  readonly #router: ms.Router;
  readonly #stallChecks: number;
  readonly #exports = new Map<string, Export>();
  readonly #dataExports = new Map<string, DataExport>();
  readonly #exporting = new Map<string, Promise<void>>();
  /** Producers the far side closed on its own: not exported again on this link. */
  readonly #refused = new Set<string>();
  readonly #imports = new Map<string, Import>();
  readonly #dataImports = new Map<string, ms.DataProducer>();
  #importQueue: Promise<unknown> = Promise.resolve();
  #connected = false;
  #closed = false;
  readonly #detach: () => void;

  private constructor(room: Room, router: ms.Router, transport: ms.PipeTransport, options: RegionPipeOptions) {
    super();
    this.room = room;
    this.transport = transport;
    this.local = { ...options.local };
    this.remote = { ...options.remote };
    this.#router = router;
    this.#stallChecks = Math.max(1, options.stallChecks ?? 2);

    const onNewProducer = (peer: Peer<Room>, producer: ms.Producer) => {
      if (!peer.remote) this.#export(peer, producer);
    };
    const onNewDataProducer = (peer: Peer<Room>, dataProducer: ms.DataProducer) => {
      if (!peer.remote) this.#exportData(peer, dataProducer);
    };
    const onRoomClose = () => this.close('roomclosed');
    room.on('newproducer', onNewProducer);
    room.on('newdataproducer', onNewDataProducer);
    room.on('close', onRoomClose);
    this.#detach = () => {
      room.off('newproducer', onNewProducer);
      room.off('newdataproducer', onNewDataProducer);
      room.off('close', onRoomClose);
    };
    transport.observer.once('close', () => this.close('transportclosed'));
  }

  /** Creates the local pipe transport for `room` towards `options.remote` (not connected yet). */
  static async create(room: Room, options: RegionPipeOptions): Promise<RegionPipe> {
    if (room.closed) throw new SfuError('CLOSED', `room ${room.id} is closed`);
    const primary = room.routers[0];
    if (!primary) throw new SfuError('CLOSED', `room ${room.id} is closed`);
    const transport = await primary.router.createPipeTransport({
      listenInfo: {
        protocol: 'udp',
        ip: options.listenIp,
        ...(options.announcedAddress ? { announcedAddress: options.announcedAddress } : {}),
        ...(options.portRange ? { portRange: options.portRange } : { port: 0 }),
      },
      enableSrtp: options.enableSrtp ?? true,
      enableRtx: options.enableRtx ?? true,
      enableSctp: options.enableSctp ?? true,
      numSctpStreams: { OS: 1024, MIS: 1024 },
      appData: { roomId: room.id, cascade: true, remoteNodeId: options.remote.nodeId },
    });
    if (room.closed) {
      transport.close();
      throw new SfuError('CLOSED', `room ${room.id} closed while creating a region pipe`);
    }
    const pipe = new RegionPipe(room, primary.router, transport, options);
    for (const peer of room.peers.values()) {
      for (const producer of peer.producers.values()) pipe.#export(peer, producer);
      for (const dataProducer of peer.dataProducers.values()) pipe.#exportData(peer, dataProducer);
    }
    return pipe;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** What the other side must connect() to. */
  get localEndpoint(): PipeEndpoint {
    const srtp = this.transport.srtpParameters;
    return { ip: this.transport.tuple.localAddress, port: this.transport.tuple.localPort, ...(srtp ? { srtpParameters: srtp } : {}) };
  }

  /** Producer ids exported (piped from here) / imported (piped to here). */
  get exportedProducerIds(): string[] {
    return [...this.#exports.keys()];
  }

  get importedProducers(): ReadonlyMap<string, ms.Producer> {
    return new Map([...this.#imports].map(([id, i]) => [id, i.producer]));
  }

  /** The receive stats of the producers piped in over this link (the cascade's link loss and jitter). */
  async importedStreamStats(): Promise<PipedStreamRawStats[]> {
    return Promise.all(
      [...this.#imports.values()].map(async ({ producer }) => ({
        producerId: producer.id,
        kind: producer.kind,
        clockRate: producer.rtpParameters.codecs[0]?.clockRate ?? 0,
        stats: await producer.getStats().catch(() => []),
      })),
    );
  }

  get importedDataProducers(): ReadonlyMap<string, ms.DataProducer> {
    return this.#dataImports;
  }

  /** Connects to the other side's endpoint (possibly rewritten, e.g. a relay in tests). */
  async connect(remote: PipeEndpoint): Promise<void> {
    this.#assertOpen();
    await this.transport.connect({
      ip: remote.ip,
      port: remote.port,
      ...(remote.srtpParameters ? { srtpParameters: remote.srtpParameters } : {}),
    });
    this.#connected = true;
  }

  /** The current export (after pending pipe consumers are created). */
  async exportState(): Promise<PipeExport> {
    await Promise.allSettled([...this.#exporting.values()]);
    const producers = await Promise.all(
      [...this.#exports.entries()].map(async ([producerId, e]): Promise<ExportedProducer | undefined> => {
        if (e.consumer.closed) return undefined;
        const stats = await e.consumer.getStats().catch(() => []);
        return {
          producerId,
          peerId: e.peerId,
          kind: e.consumer.kind,
          rtpParameters: e.consumer.rtpParameters,
          paused: e.consumer.producerPaused,
          appData: { ...e.producer.appData },
          byteCount: sumBytes(stats, 'outbound-rtp'),
        };
      }),
    );
    const dataProducers = [...this.#dataExports.entries()].flatMap(([dataProducerId, e]): ExportedDataProducer[] =>
      e.dataConsumer.closed
        ? []
        : [
            {
              dataProducerId,
              peerId: e.peerId,
              ...(e.dataConsumer.sctpStreamParameters ? { sctpStreamParameters: e.dataConsumer.sctpStreamParameters } : {}),
              label: e.dataConsumer.label,
              protocol: e.dataConsumer.protocol,
              appData: { ...e.dataProducer.appData },
            },
          ],
    );
    return { origin: { ...this.local }, producers: producers.filter((p) => p !== undefined), dataProducers };
  }

  /** Reconciles the producers imported from the other side with its export. Serialized. */
  importState(state: PipeExport): Promise<PipeImportResult> {
    const run = this.#importQueue.then(() => this.#import(state));
    this.#importQueue = run.catch(() => undefined);
    return run;
  }

  /** Origin side: closes pipe consumers of producers the far side held and has closed since. */
  applyImportResult(result: PipeImportResult): void {
    const held = new Set(result.producers);
    for (const [id, e] of this.#exports) {
      if (held.has(id)) e.acked = true;
      else if (e.acked) {
        this.#refused.add(id);
        e.consumer.close();
      }
    }
    const heldData = new Set(result.dataProducers);
    for (const [id, e] of this.#dataExports) {
      if (heldData.has(id)) e.acked = true;
      else if (e.acked) {
        this.#refused.add(id);
        e.dataConsumer.close();
      }
    }
  }

  /** Closes the pipe transport (pipe consumers and imported producers with it). Idempotent. */
  close(reason: RegionPipeCloseReason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach();
    this.transport.close();
    this.#exports.clear();
    this.#dataExports.clear();
    this.#imports.clear();
    this.#dataImports.clear();
    this.safeEmit('close', reason);
  }

  #assertOpen(): void {
    if (this.#closed) throw new SfuError('CLOSED', `region pipe ${this.room.id} → ${this.remote.nodeId} is closed`);
  }

  #export(peer: Peer<Room>, producer: ms.Producer): void {
    const id = producer.id;
    if (this.#closed || producer.closed || this.#exports.has(id) || this.#exporting.has(id) || this.#refused.has(id)) return;
    const exporting = (async () => {
      try {
        await this.room.ensureOnRouter(this.#router, { producerId: id });
        if (this.#closed || producer.closed) return;
        const consumer = await this.transport.consume({ producerId: id, appData: { peerId: peer.id, cascade: true } });
        if (this.#closed || consumer.closed) {
          consumer.close();
          return;
        }
        this.#exports.set(id, { consumer, peerId: peer.id, producer, acked: false });
        const changed = () => {
          if (!this.#closed) this.safeEmit('change');
        };
        consumer.on('producerpause', changed);
        consumer.on('producerresume', changed);
        consumer.observer.once('close', () => {
          if (this.#exports.get(id)?.consumer === consumer) this.#exports.delete(id);
          changed();
        });
        changed();
      } catch {
        // Producer, room or pipe closed meanwhile.
      } finally {
        this.#exporting.delete(id);
      }
    })();
    this.#exporting.set(id, exporting);
  }

  #exportData(peer: Peer<Room>, dataProducer: ms.DataProducer): void {
    const id = dataProducer.id;
    if (this.#closed || dataProducer.closed || this.#dataExports.has(id) || this.#exporting.has(id) || this.#refused.has(id)) return;
    const exporting = (async () => {
      try {
        await this.room.ensureOnRouter(this.#router, { dataProducerId: id });
        if (this.#closed || dataProducer.closed) return;
        const dataConsumer = await this.transport.consumeData({ dataProducerId: id, appData: { peerId: peer.id, cascade: true } });
        if (this.#closed || dataConsumer.closed) {
          dataConsumer.close();
          return;
        }
        this.#dataExports.set(id, { dataConsumer, peerId: peer.id, dataProducer, acked: false });
        dataConsumer.observer.once('close', () => {
          if (this.#dataExports.get(id)?.dataConsumer === dataConsumer) this.#dataExports.delete(id);
          if (!this.#closed) this.safeEmit('change');
        });
        this.safeEmit('change');
      } catch {
        // Data producer, room or pipe closed meanwhile.
      } finally {
        this.#exporting.delete(id);
      }
    })();
    this.#exporting.set(id, exporting);
  }

  async #import(state: PipeExport): Promise<PipeImportResult> {
    this.#assertOpen();
    const origin = { nodeId: this.remote.nodeId, region: this.remote.region };
    const stalled: string[] = [];

    const wanted = new Map(state.producers.map((p) => [p.producerId, p]));
    for (const [id, imp] of [...this.#imports]) {
      if (!wanted.has(id)) {
        this.#imports.delete(id);
        imp.producer.close();
      }
    }
    for (const spec of state.producers) {
      if (this.#closed) break;
      let imp = this.#imports.get(spec.producerId);
      if (!imp) {
        // Never two producers with one id in a room (e.g. a stale link of a restarted node).
        if (this.room.producers.has(spec.producerId)) continue;
        let producer: ms.Producer | undefined;
        try {
          producer = await this.transport.produce({
            id: spec.producerId,
            kind: spec.kind,
            rtpParameters: spec.kind === 'audio' ? withoutNack(spec.rtpParameters) : spec.rtpParameters,
            paused: spec.paused,
            appData: { ...spec.appData, peerId: spec.peerId, piped: true, originNodeId: origin.nodeId, originRegion: origin.region },
          });
          if (this.#closed || producer.closed) {
            producer.close();
            break;
          }
          this.room.adoptPipedProducer(producer, this.#router, { ...origin, peerId: spec.peerId });
        } catch {
          producer?.close();
          continue;
        }
        const created: Import = { producer, lastRemoteBytes: undefined, lastLocalBytes: 0, stalledChecks: 0 };
        imp = created;
        this.#imports.set(spec.producerId, created);
        producer.observer.once('close', () => {
          if (this.#imports.get(spec.producerId) === created) {
            this.#imports.delete(spec.producerId);
            // Closed here (a remote peer left, the room closed): tell the origin.
            if (!this.#closed) this.safeEmit('change');
          }
        });
      } else if (spec.paused !== imp.producer.paused) {
        try {
          await (spec.paused ? imp.producer.pause() : imp.producer.resume());
        } catch {
          // Closed meanwhile.
        }
      }
      // Stall check: the origin put bytes on the pipe since the last import, none arrived here.
      const localBytes = sumBytes(await imp.producer.getStats().catch(() => []), 'inbound-rtp');
      const remoteGrew = imp.lastRemoteBytes !== undefined && spec.byteCount > imp.lastRemoteBytes;
      if (!spec.paused && remoteGrew && localBytes <= imp.lastLocalBytes) imp.stalledChecks++;
      else imp.stalledChecks = 0;
      imp.lastRemoteBytes = spec.byteCount;
      imp.lastLocalBytes = localBytes;
      if (imp.stalledChecks >= this.#stallChecks) stalled.push(spec.producerId);
    }

    const wantedData = new Map(state.dataProducers.map((d) => [d.dataProducerId, d]));
    for (const [id, dataProducer] of [...this.#dataImports]) {
      if (!wantedData.has(id)) {
        this.#dataImports.delete(id);
        dataProducer.close();
      }
    }
    for (const spec of state.dataProducers) {
      if (this.#closed) break;
      if (this.#dataImports.has(spec.dataProducerId) || this.room.dataProducers.has(spec.dataProducerId)) continue;
      let dataProducer: ms.DataProducer | undefined;
      try {
        dataProducer = await this.transport.produceData({
          id: spec.dataProducerId,
          ...(spec.sctpStreamParameters ? { sctpStreamParameters: spec.sctpStreamParameters } : {}),
          label: spec.label,
          protocol: spec.protocol,
          appData: { ...spec.appData, peerId: spec.peerId, piped: true, originNodeId: origin.nodeId, originRegion: origin.region },
        });
        if (this.#closed || dataProducer.closed) {
          dataProducer.close();
          break;
        }
        this.room.adoptPipedDataProducer(dataProducer, this.#router, { ...origin, peerId: spec.peerId });
      } catch {
        dataProducer?.close();
        continue;
      }
      const created = dataProducer;
      this.#dataImports.set(spec.dataProducerId, created);
      created.observer.once('close', () => {
        if (this.#dataImports.get(spec.dataProducerId) === created) {
          this.#dataImports.delete(spec.dataProducerId);
          if (!this.#closed) this.safeEmit('change');
        }
      });
    }
    return { producers: [...this.#imports.keys()], dataProducers: [...this.#dataImports.keys()], stalled };
  }
}
