/**
 * The monitoring side of the library, mediasoup style: `observer` emitters on RoomRouter, Room
 * and Peer report every object as it comes and goes; and RoomRouter.rtpCapabilities() answers
 * for clients that have not joined, without leaving a router behind.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { RoomRouter, WorkerPool, type Peer, type Room } from '../../sfu/index.ts';
import { opusRtpParameters, vp8RtpParameters } from './helpers/rtp.ts';

describe('observers', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  async function setup(): Promise<{ pool: WorkerPool; rooms: RoomRouter }> {
    const pool = await WorkerPool.create({ numWorkers: 1 });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool });
    cleanups.push(() => rooms.close());
    return { pool, rooms };
  }

  /** Records every observer event under `rooms`, in order. */
  function watch(rooms: RoomRouter): string[] {
    const events: string[] = [];
    const watchPeer = (peer: Peer): void => {
      peer.observer.on('newtransport', (t) => events.push(`${peer.id} newtransport ${t.type}`));
      peer.observer.on('newproducer', (p) => events.push(`${peer.id} newproducer ${p.kind}`));
      peer.observer.on('newconsumer', (c) => events.push(`${peer.id} newconsumer ${c.kind}`));
      peer.observer.on('newdataproducer', () => events.push(`${peer.id} newdataproducer`));
      peer.observer.on('newdataconsumer', () => events.push(`${peer.id} newdataconsumer`));
      peer.observer.on('close', () => events.push(`${peer.id} close`));
    };
    const watchRoom = (room: Room): void => {
      room.observer.on('newpeer', (peer) => {
        events.push(`${room.id} newpeer ${peer.id}`);
        watchPeer(peer);
      });
      room.observer.on('close', () => events.push(`${room.id} close`));
    };
    rooms.observer.on('newroom', (room) => {
      events.push(`newroom ${room.id}`);
      watchRoom(room);
    });
    rooms.observer.on('close', () => events.push('rooms close'));
    return events;
  }

  it('reports join, produce, consume and leave in order', async () => {
    const { rooms } = await setup();
    const events = watch(rooms);

    const alice = await rooms.join('r', 'alice');
    const send = await alice.createPlainTransport({ comedia: true });
    await alice.produce({ transportId: send.id, kind: 'audio', rtpParameters: opusRtpParameters(1111) });
    await alice.produce({ transportId: send.id, kind: 'video', rtpParameters: vp8RtpParameters(2222) });
    const data = await alice.createDirectTransport();
    const dataProducer = await alice.produceData({ transportId: data.id });

    const bob = await rooms.join('r', 'bob', { rtpCapabilities: alice.room.rtpCapabilities });
    const recv = await bob.createPlainTransport();
    for (const { producer } of alice.room.producers.values()) await bob.consume({ transportId: recv.id, producerId: producer.id });
    const bobData = await bob.createDirectTransport();
    await bob.consumeData({ transportId: bobData.id, dataProducerId: dataProducer.id });

    rooms.leave('r', 'bob');
    rooms.leave('r', 'alice'); // the last peer: the room closes
    rooms.close();

    expect(events).toEqual([
      'newroom r',
      'r newpeer alice',
      'alice newtransport plain',
      'alice newproducer audio',
      'alice newproducer video',
      'alice newtransport direct',
      'alice newdataproducer',
      'r newpeer bob',
      'bob newtransport plain',
      'bob newconsumer audio',
      'bob newconsumer video',
      'bob newtransport direct',
      'bob newdataconsumer',
      'bob close',
      'alice close',
      'r close',
      'rooms close',
    ]);
  });

  it('reports the peers a closing room closes before the room', async () => {
    const { rooms } = await setup();
    const events = watch(rooms);
    await rooms.join('r', 'a');
    await rooms.join('r', 'b');
    rooms.close();
    expect(events).toEqual(['newroom r', 'r newpeer a', 'r newpeer b', 'a close', 'b close', 'r close', 'rooms close']);
  });
});

describe('RoomRouter.rtpCapabilities()', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  it("equals a room's, from one probe router that is closed at once", async () => {
    const pool = await WorkerPool.create({ numWorkers: 1 });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool });
    cleanups.push(() => rooms.close());
    const worker = pool.workers[0]!.worker;
    let routersCreated = 0;
    worker.observer.on('newrouter', () => routersCreated++);

    const [caps, again] = await Promise.all([rooms.rtpCapabilities(), rooms.rtpCapabilities()]);
    expect(again).toBe(caps);
    expect(routersCreated).toBe(1);
    expect((await worker.dump()).routerIds).toEqual([]);
    expect(caps.codecs?.map((c) => c.mimeType)).toContain('audio/opus');

    const peer = await rooms.join('r', 'p');
    expect(peer.room.rtpCapabilities).toEqual(caps);
    expect(await rooms.rtpCapabilities()).toBe(caps);
    expect(routersCreated).toBe(2); // the room's own

    rooms.close();
    await expect(rooms.rtpCapabilities()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('does not cache a failed probe', async () => {
    const pool = await WorkerPool.create({ numWorkers: 1 });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool });
    cleanups.push(() => rooms.close());
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
    await expect(rooms.rtpCapabilities()).rejects.toThrow(/injected/);
    expect((await rooms.rtpCapabilities()).codecs?.length).toBeGreaterThan(0);
  });
});
