import { readFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import type { SfuLoadProvider } from '../../region-agent/load.ts';
import { RoomRouter, WorkerPool, collectSfuLoad } from '../../sfu/index.ts';
import { nextEvent, waitUntil } from './helpers/rtp.ts';

describe('WorkerPool', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  async function makePool(numWorkers = 2): Promise<WorkerPool> {
    const pool = await WorkerPool.create({ numWorkers });
    cleanups.push(() => pool.close());
    return pool;
  }

  it('starts one worker per slot, each with a WebRtcServer on an ephemeral 127.0.0.1 port', async () => {
    const pool = await makePool(2);
    expect(pool.size).toBe(2);
    expect(pool.workers.map((w) => w.index)).toEqual([0, 1]);
    expect(new Set(pool.workers.map((w) => w.pid)).size).toBe(2);
    for (const w of pool.workers) {
      const dump = await w.webRtcServer.dump();
      expect(dump.udpSockets).toHaveLength(1);
      expect(dump.tcpServers).toHaveLength(1);
      expect(dump.udpSockets[0]?.ip).toBe('127.0.0.1');
      expect(dump.udpSockets[0]?.port).toBeGreaterThan(0);
    }
  });

  it('announces the configured address and honours a port range', async () => {
    // The range is the OS's ephemeral port range, so the test only takes a
    // port the OS could have handed out for port 0 anyway.
    const [min, max] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [
      number,
      number,
    ];
    const pool = await WorkerPool.create({
      numWorkers: 1,
      protocols: ['udp'],
      announcedAddress: 'sfu.example.test',
      portRange: { min, max },
    });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool });
    cleanups.push(() => rooms.close());
    const peer = await rooms.join('r', 'p');
    const transport = await peer.createWebRtcTransport();
    expect(transport.iceCandidates).toHaveLength(1);
    const candidate = transport.iceCandidates[0]!;
    expect(candidate.address).toBe('sfu.example.test');
    expect(candidate.port).toBeGreaterThanOrEqual(min);
    expect(candidate.port).toBeLessThanOrEqual(max);
  });

  it('rejects bad options', async () => {
    await expect(WorkerPool.create({ numWorkers: 0 })).rejects.toThrow(/numWorkers/);
    await expect(WorkerPool.create({ numWorkers: 1, portRange: { min: 10, max: 5 } })).rejects.toThrow(/portRange/);
  });

  it('selects the least-loaded worker and reports load snapshots', async () => {
    const pool = await makePool(2);
    const rooms = new RoomRouter({ pool, spread: false });
    cleanups.push(() => rooms.close());

    const first = pool.leastLoaded();
    const a = await rooms.join('room-a', 'a1');
    expect(a.worker).toBe(first);
    await a.createWebRtcTransport();
    await a.createWebRtcTransport();
    // room-a made its worker busier: the next room goes to the other worker.
    const b = await rooms.join('room-b', 'b1');
    expect(b.worker).not.toBe(a.worker);
    expect(pool.leastLoaded({ exclude: [b.worker] })).toBe(a.worker);

    const snapshot = await pool.getLoad();
    expect(snapshot.workers).toHaveLength(2);
    const loadA = snapshot.workers.find((w) => w.pid === a.worker.pid)!;
    expect(loadA).toMatchObject({ routers: 1, transports: 2, producers: 0, consumers: 0, rooms: 1 });
    expect(loadA.cpu).toBeGreaterThanOrEqual(0);
    expect(loadA.memoryRssBytes).toBeGreaterThan(1_000_000);
    expect(loadA.memorySource).toBe('proc');
    expect(snapshot.totals).toMatchObject({ routers: 2, transports: 2, rooms: 2, workers: 2 });

    // The cpu fraction covers the interval since the previous snapshot.
    const again = await pool.getLoad();
    const againA = again.workers.find((w) => w.pid === a.worker.pid)!;
    expect(againA.intervalMs).toBeLessThan(5_000);
    expect(againA.cpu).toBeLessThan(2);
  });

  it('reports its load in the region agent\'s SfuLoad shape', async () => {
    const pool = await makePool(2);
    const rooms = new RoomRouter({ pool, spread: false });
    cleanups.push(() => rooms.close());
    const a = await rooms.join('r1', 'a');
    await rooms.join('r1', 'b');
    await rooms.join('r2', 'c');
    await a.createWebRtcTransport();
    const provider: SfuLoadProvider = () => collectSfuLoad(pool, rooms);
    const first = await provider();
    expect(first).toMatchObject({ participants: 3, rooms: 2, transports: 1, producers: 0, consumers: 0, workers: 2 });
    expect(first.workerRssBytes).toBeGreaterThan(1_000_000);
    expect(first.workerCpuTimeMs).toBeGreaterThan(0);
    const second = await provider();
    expect(second.workerCpuTimeMs).toBeGreaterThanOrEqual(first.workerCpuTimeMs); // cumulative
  });

  it('replaces a SIGKILLed worker and reports the rooms it hosted', async () => {
    const pool = await makePool(2);
    const rooms = new RoomRouter({ pool, spread: false });
    cleanups.push(() => rooms.close());

    const p1 = await rooms.join('doomed-1', 'x');
    const victim = p1.worker;
    const survivor = await rooms.join('survivor', 'y');
    expect(survivor.worker).not.toBe(victim);
    // Make the survivor's worker busier so that doomed-2 lands on the victim.
    await survivor.createWebRtcTransport();
    const p3 = await rooms.join('doomed-2', 'z');
    expect(p3.worker).toBe(victim);

    const closedRooms: string[] = [];
    rooms.on('roomclosed', (room, reason) => closedRooms.push(`${room.id}:${reason}`));
    const died = nextEvent(pool, 'workerdied');
    const replaced = nextEvent(pool, 'workerreplaced');

    const victimPid = victim.pid;
    process.kill(victimPid, 'SIGKILL');

    const [diedEvent] = await died;
    expect(diedEvent.pid).toBe(victimPid);
    expect(diedEvent.index).toBe(victim.index);
    expect(diedEvent.roomIds).toEqual(['doomed-1', 'doomed-2']);
    expect(closedRooms.sort()).toEqual(['doomed-1:workerdied', 'doomed-2:workerdied']);
    expect(rooms.getRoom('doomed-1')).toBeUndefined();
    expect(p1.closed).toBe(true);
    expect(survivor.closed).toBe(false);

    const [replacedEvent] = await replaced;
    expect(replacedEvent.index).toBe(victim.index);
    expect(replacedEvent.oldPid).toBe(victimPid);
    expect(replacedEvent.worker.pid).not.toBe(victimPid);
    expect(pool.workers).toHaveLength(2);
    expect(pool.getWorker(victim.index)).toBe(replacedEvent.worker);

    // The lost room can be recreated at once.
    const again = await rooms.join('doomed-1', 'x');
    expect(again.worker.closed).toBe(false);
    await again.createWebRtcTransport();
  });

  it('throws when every worker is gone and replacement is off', async () => {
    const pool = await WorkerPool.create({ numWorkers: 1, replaceDiedWorkers: false });
    cleanups.push(() => pool.close());
    const died = nextEvent(pool, 'workerdied');
    process.kill(pool.workers[0]!.pid, 'SIGKILL');
    await died;
    await waitUntil(() => pool.workers.length === 0, 5_000, 'no live workers');
    expect(() => pool.leastLoaded()).toThrow(/no live worker/);
    const rooms = new RoomRouter({ pool });
    cleanups.push(() => rooms.close());
    await expect(rooms.join('r', 'p')).rejects.toThrow(/no live worker/);
    expect(rooms.rooms.size).toBe(0);
  });

  it('close() closes every worker and is idempotent', async () => {
    const pool = await makePool(2);
    const workers = pool.workers;
    pool.close();
    pool.close();
    expect(pool.closed).toBe(true);
    expect(workers.every((w) => w.worker.closed)).toBe(true);
    const rooms = new RoomRouter({ pool });
    await expect(rooms.join('r', 'p')).rejects.toThrow(/closed/);
  });
});
