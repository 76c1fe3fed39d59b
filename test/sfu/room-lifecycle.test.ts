import { afterEach, describe, expect, it } from 'vitest';

import type { types as ms } from 'mediasoup';

import { RoomRouter, SfuError, WorkerPool, type PoolWorker } from '../../sfu/index.ts';
import { opusRtpParameters } from './helpers/rtp.ts';

/**
 * What the worker process itself reports (its dumps), independent of the
 * library's bookkeeping. Router dumps need router objects, which are
 * collected here through mediasoup's observer API.
 */
const liveRouters = new Map<PoolWorker, Set<ms.Router>>();

function trackRouters(pool: WorkerPool): void {
  for (const w of pool.workers) {
    const set = new Set<ms.Router>();
    liveRouters.set(w, set);
    w.worker.observer.on('newrouter', (router) => {
      set.add(router);
      router.observer.once('close', () => set.delete(router));
    });
  }
}

async function workerInventory(worker: PoolWorker): Promise<{
  routers: number;
  transports: number;
  producers: number;
  consumers: number;
  rtpObservers: number;
  webRtcServerTransports: number;
}> {
  const dump = await worker.worker.dump();
  const routers = [...(liveRouters.get(worker) ?? [])];
  expect(routers.map((r) => r.id).sort()).toEqual([...dump.routerIds].sort());
  let transports = 0;
  let producers = 0;
  let consumers = 0;
  let rtpObservers = 0;
  for (const router of routers) {
    const d = await router.dump();
    transports += d.transportIds.length;
    producers += d.mapProducerIdConsumerIds.length;
    consumers += d.mapConsumerIdProducerId.length;
    rtpObservers += d.rtpObserverIds.length;
  }
  const server = await worker.webRtcServer.dump();
  return {
    routers: dump.routerIds.length,
    transports,
    producers,
    consumers,
    rtpObservers,
    webRtcServerTransports: server.webRtcTransportIds.length,
  };
}

describe('rooms: lifecycle and leaks', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    liveRouters.clear();
  });

  async function setup(numWorkers = 1): Promise<{ pool: WorkerPool; rooms: RoomRouter }> {
    const pool = await WorkerPool.create({ numWorkers });
    cleanups.push(() => pool.close());
    trackRouters(pool);
    const rooms = new RoomRouter({ pool });
    cleanups.push(() => rooms.close());
    return { pool, rooms };
  }

  it('creates one router per room even for concurrent first joins', async () => {
    const { pool, rooms } = await setup();
    const created: string[] = [];
    rooms.on('roomcreated', (room) => created.push(room.id));
    const peers = await Promise.all(['a', 'b', 'c', 'd'].map((id) => rooms.join('same-room', id)));
    expect(created).toEqual(['same-room']);
    expect(new Set(peers.map((p) => p.router)).size).toBe(1);
    expect((await pool.workers[0]!.worker.dump()).routerIds).toHaveLength(1);
    expect(rooms.getRoom('same-room')?.peers.size).toBe(4);
    await expect(rooms.join('same-room', 'a')).rejects.toMatchObject({ code: 'PEER_EXISTS' });
  });

  it('does not cache a failed room creation', async () => {
    const { pool, rooms } = await setup();
    const worker = pool.workers[0]!.worker;
    const original = worker.createRouter.bind(worker);
    let failures = 1;
    worker.createRouter = (async (options) => {
      if (failures-- > 0) throw new Error('injected createRouter failure');
      return original(options);
    }) as typeof worker.createRouter;
    cleanups.push(() => {
      worker.createRouter = original;
    });
    await expect(rooms.join('flaky', 'p1')).rejects.toThrow(/injected/);
    expect(rooms.getRoom('flaky')).toBeUndefined();
    const peer = await rooms.join('flaky', 'p1');
    expect(peer.room.id).toBe('flaky');
  });

  it('closes the room and its router when the last peer leaves', async () => {
    const { pool, rooms } = await setup();
    const a = await rooms.join('r', 'a');
    const b = await rooms.join('r', 'b');
    const room = a.room;
    const reasons: string[] = [];
    room.on('close', (reason) => reasons.push(reason));
    expect(rooms.leave('r', 'a')).toBe(true);
    expect(rooms.leave('r', 'a')).toBe(false);
    expect(room.closed).toBe(false);
    b.close();
    expect(room.closed).toBe(true);
    expect(reasons).toEqual(['empty']);
    expect(rooms.rooms.size).toBe(0);
    expect((await pool.workers[0]!.worker.dump()).routerIds).toHaveLength(0);
    await expect(a.createWebRtcTransport()).rejects.toBeInstanceOf(SfuError);
  });

  it('leaks nothing after 200 join/leave cycles', async () => {
    const { pool, rooms } = await setup();
    const poolWorker = pool.workers[0]!;

    // A long-lived peer keeps one room open while others come and go in it;
    // a second room is created and destroyed on every cycle.
    const host = await rooms.join('steady', 'host');
    const hostTransport = await host.createPlainTransport({ comedia: true });
    const hostAudio = await host.produce({
      transportId: hostTransport.id,
      kind: 'audio',
      rtpParameters: opusRtpParameters(424242),
    });
    const baseline = await workerInventory(poolWorker);

    for (let i = 0; i < 200; i++) {
      // Churn in the steady room: a guest consumes the host and produces.
      const guest = await rooms.join('steady', `guest-${i}`, { rtpCapabilities: host.room.rtpCapabilities });
      const recv = await guest.createWebRtcTransport();
      const send = await guest.createPlainTransport({ comedia: true });
      const consumer = await guest.consume({ transportId: recv.id, producerId: hostAudio.id });
      await guest.resumeConsumer(consumer.id);
      await guest.produce({ transportId: send.id, kind: 'audio', rtpParameters: opusRtpParameters(1000 + i) });

      // A whole room lifecycle.
      const a = await rooms.join(`ephemeral-${i}`, 'a');
      const b = await rooms.join(`ephemeral-${i}`, 'b', { rtpCapabilities: a.room.rtpCapabilities });
      const at = await a.createPlainTransport({ comedia: true });
      const bt = await b.createWebRtcTransport();
      const p = await a.produce({ transportId: at.id, kind: 'audio', rtpParameters: opusRtpParameters(5000 + i) });
      await b.consume({ transportId: bt.id, producerId: p.id });

      if (i % 2 === 0) {
        rooms.leave('steady', guest.id);
        rooms.leave(`ephemeral-${i}`, 'a');
        rooms.leave(`ephemeral-${i}`, 'b');
      } else {
        guest.close();
        b.room.close();
      }
    }

    expect(rooms.rooms.size).toBe(1);
    const room = rooms.getRoom('steady')!;
    expect([...room.peers.keys()]).toEqual(['host']);
    expect([...room.producers.keys()]).toEqual([hostAudio.id]);
    expect(host.transports.size).toBe(1);
    expect(host.consumers.size).toBe(0);
    expect(poolWorker.counts).toEqual({ routers: 1, transports: 1, producers: 1, consumers: 0 });
    expect(poolWorker.roomIds).toEqual(['steady']);
    expect(await workerInventory(poolWorker)).toEqual(baseline);
    expect(baseline).toEqual({
      routers: 1,
      transports: 1,
      producers: 1,
      consumers: 0,
      rtpObservers: 1,
      webRtcServerTransports: 0,
    });

    host.close();
    expect(rooms.rooms.size).toBe(0);
    expect(await workerInventory(poolWorker)).toEqual({
      routers: 0,
      transports: 0,
      producers: 0,
      consumers: 0,
      rtpObservers: 0,
      webRtcServerTransports: 0,
    });
    expect(poolWorker.counts).toEqual({ routers: 0, transports: 0, producers: 0, consumers: 0 });
  });
});

describe('rooms: codecs and layers', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  it('offers Opus, VP8, VP9 and H264 and applies preferred layers to simulcast consumers', async () => {
    const pool = await WorkerPool.create({ numWorkers: 1 });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool });
    cleanups.push(() => rooms.close());

    const sender = await rooms.join('layers', 'sender');
    const caps = sender.room.rtpCapabilities;
    const mimeTypes = new Set((caps.codecs ?? []).map((c) => c.mimeType.toLowerCase()));
    for (const mime of ['audio/opus', 'video/vp8', 'video/vp9', 'video/h264']) expect(mimeTypes).toContain(mime);

    const viewer = await rooms.join('layers', 'viewer', { rtpCapabilities: caps });
    const st = await sender.createPlainTransport({ comedia: true });
    const simulcast = await sender.produce({
      transportId: st.id,
      kind: 'video',
      rtpParameters: {
        codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }],
        encodings: [
          { ssrc: 1001, scalabilityMode: 'L1T3' },
          { ssrc: 1002, scalabilityMode: 'L1T3' },
          { ssrc: 1003, scalabilityMode: 'L1T3' },
        ],
      },
    });
    const vt = await viewer.createWebRtcTransport();
    const consumer = await viewer.consume({
      transportId: vt.id,
      producerId: simulcast.id,
      preferredLayers: { spatialLayer: 1, temporalLayer: 1 },
    });
    expect(consumer.type).toBe('simulcast');
    expect(consumer.paused).toBe(true);
    expect(consumer.preferredLayers).toEqual({ spatialLayer: 1, temporalLayer: 1 });
    await viewer.setPreferredLayers(consumer.id, { spatialLayer: 0, temporalLayer: 2 });
    expect(consumer.preferredLayers).toEqual({ spatialLayer: 0, temporalLayer: 2 });
    await viewer.resumeConsumer(consumer.id);
    expect(consumer.paused).toBe(false);

    await expect(viewer.consume({ transportId: vt.id, producerId: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const noCaps = await rooms.join('layers', 'no-caps');
    const nt = await noCaps.createWebRtcTransport();
    await expect(noCaps.consume({ transportId: nt.id, producerId: simulcast.id })).rejects.toMatchObject({
      code: 'NO_RTP_CAPABILITIES',
    });
  });
});
