import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppEvents } from '../../router/webhooks/app-events.ts';
import { type AppEventStore, type AppOccurrence, CLOSED_ROOM } from '../../router/webhooks/types.ts';
import type { AppEvent } from '../../shared/app-webhook-events.ts';

/** Stores over one shared state: each `open()` is another router (for Redis, another connection). */
export interface AppEventStoreHarness {
  open(): Promise<AppEventStore>;
  close(): Promise<void>;
}

const T0 = Date.now();
const IDLE_TTL_MS = 60_000;
const silent = { error() {}, warn() {}, info() {}, debug() {} } as never;

/** The journal's app-event part, on its own (the degraded journal's is tested with the router). */
class ArrayJournal {
  readonly items: AppOccurrence[] = [];
  get appEventCount() {
    return this.items.length;
  }
  addAppEvent(o: AppOccurrence) {
    this.items.push(o);
  }
  firstAppEvent() {
    return this.items[0];
  }
  dropFirstAppEvent() {
    this.items.shift();
  }
}

const joined = (roomId: string, participantId: string, nodeId: string, extra: Partial<AppOccurrence> = {}): AppOccurrence =>
  ({ kind: 'joined', roomId, participantId, allocationId: `a-${participantId}-${nodeId}`, region: nodeId.replace(/-\d+$/, ''), nodeId, moveReason: null, atMs: T0, ...extra }) as AppOccurrence;

/**
 * One contract for every AppEventStore (memory, Redis): events derived from occurrences get
 * increasing per-room sequence numbers, a room's head is held by one consumer at a time and
 * leaves only when acknowledged, retries wait for their time, dead letters leave the queue and
 * come back on replay.
 */
export function describeAppEventStoreContract(name: string, factory: () => Promise<AppEventStoreHarness>): void {
  describe(`${name} (AppEventStore contract)`, () => {
    let harness: AppEventStoreHarness;
    let store: AppEventStore;
    let queued: AppEvent[];
    let events: AppEvents;
    let clock: number;

    beforeEach(async () => {
      harness = await factory();
      store = await harness.open();
      queued = [];
      clock = T0;
      let n = 0;
      events = new AppEvents({ store, journal: new ArrayJournal(), idleTtlMs: IDLE_TTL_MS, now: () => clock, newId: () => `e${++n}`, log: silent, onQueued: (e) => queued.push(...e) });
    });
    afterEach(async () => {
      await harness.close();
    });

    it('derives a room life: started, joined, tracks, moved, left, finished only after the idle TTL, with increasing sequence numbers', async () => {
      await events.raise(joined('r', 'alice', 'us-east-1'));
      await events.raise(joined('r', 'alice', 'us-east-1')); // the same join reported twice
      await events.raise(joined('r', 'bob', 'eu-west-1'));
      const track = { trackId: 'p1', kind: 'video' as const, source: 'camera' as const, layers: [{ rid: 'q' }, { rid: 'h' }, { rid: 'f' }] };
      await events.raise({ kind: 'track', roomId: 'r', participantId: 'alice', allocationId: 'a-alice-us-east-1', published: true, track, atMs: T0 });
      await events.raise({ kind: 'track', roomId: 'r', participantId: 'alice', allocationId: 'stale', published: true, track, atMs: T0 });
      await events.raise(joined('r', 'bob', 'us-east-2', { moveReason: 'rebalance' }));
      // The old edge's late left for the replaced allocation changes nothing.
      await events.raise({ kind: 'left', roomId: 'r', participantId: 'bob', allocationId: 'a-bob-eu-west-1', reason: 'left', atMs: T0 });
      await events.raise({ kind: 'left', roomId: 'r', participantId: 'bob', allocationId: null, reason: 'kicked', atMs: T0 });
      await events.raise({ kind: 'left', roomId: 'r', participantId: 'alice', allocationId: 'a-alice-us-east-1', reason: 'timed_out', atMs: T0 });
      clock = T0 + IDLE_TTL_MS - 1;
      await events.finishIdleRooms();
      expect(queued.map((e) => e.event)).not.toContain('room_finished');
      clock = T0 + IDLE_TTL_MS;
      await events.finishIdleRooms();

      expect(queued.map((e) => [e.event, e.participantId, 'reason' in e ? e.reason : null])).toEqual([
        ['room_started', null, null],
        ['participant_joined', 'alice', null],
        ['participant_joined', 'bob', null],
        ['track_published', 'alice', null],
        ['participant_moved', 'bob', 'rebalance'],
        ['participant_left', 'bob', 'kicked'],
        ['participant_left', 'alice', 'timed_out'],
        ['room_finished', null, null],
      ]);
      expect(queued.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(queued[4]).toMatchObject({ region: 'us-east', nodeId: 'us-east-2', from: { region: 'eu-west', nodeId: 'eu-west-1' } });
      expect(queued[3]).toMatchObject({ track, nodeId: 'us-east-1' });
      expect(queued[7]).toMatchObject({ roomId: 'r', region: 'us-east', nodeId: 'us-east-1' });
      expect(await store.roomsToFinish(clock + IDLE_TTL_MS, 10)).toEqual([]);

      // A room started again continues its sequence; a rejoin within the idle TTL does not restart it.
      await events.raise(joined('r', 'carol', 'us-east-1'));
      await events.raise({ kind: 'left', roomId: 'r', participantId: 'carol', allocationId: 'a-carol-us-east-1', reason: 'left', atMs: clock });
      await events.raise(joined('r', 'carol', 'us-west-1'));
      expect(queued.slice(8).map((e) => [e.event, e.seq])).toEqual([
        ['room_started', 9],
        ['participant_joined', 10],
        ['participant_left', 11],
        ['participant_joined', 12],
      ]);
      // A new session of the same participant elsewhere, not a move: left (replaced), then joined.
      await events.raise(joined('r', 'carol', 'eu-west-1'));
      expect(queued.slice(12).map((e) => [e.event, 'reason' in e ? e.reason : null, e.nodeId])).toEqual([
        ['participant_left', 'replaced', 'us-west-1'],
        ['participant_joined', null, 'eu-west-1'],
      ]);
    });

    it('keeps rooms apart and names client-chosen room ids safely (__proto__, constructor)', async () => {
      for (const roomId of ['__proto__', 'constructor', 'toString']) await events.raise(joined(roomId, 'alice', 'us-east-1'));
      expect(queued.map((e) => [e.roomId, e.seq])).toEqual([
        ['__proto__', 1],
        ['__proto__', 2],
        ['constructor', 1],
        ['constructor', 2],
        ['toString', 1],
        ['toString', 2],
      ]);
      expect((await store.dueRooms(clock, 10)).sort()).toEqual(['__proto__', 'constructor', 'toString']);
      expect((await store.readRoom('hasOwnProperty')).version).toBe(0);
    });

    it('commits with a compare-and-set on the room version: two routers queue each event once', async () => {
      const other = await harness.open();
      const read = await store.readRoom('r');
      const presence = { ...CLOSED_ROOM, open: true };
      const event = { id: 'x', event: 'room_started', roomId: 'r', participantId: null, region: 'us-east', nodeId: 'us-east-1', occurredAtMs: T0 } as const;
      const [a, b] = await Promise.all([
        store.commit({ roomId: 'r', expectedVersion: read.version, presence, events: [event], nowMs: T0 }),
        other.commit({ roomId: 'r', expectedVersion: read.version, presence, events: [{ ...event, id: 'y' }], nowMs: T0 }),
      ]);
      expect([a, b].filter((x) => x !== null)).toHaveLength(1);
      expect((await store.readRoom('r')).version).toBe(read.version + 1);
    });

    it('one consumer per room: the head is claimed once, acknowledged in order; other rooms are not held up', async () => {
      const other = await harness.open();
      await events.raise(joined('r1', 'alice', 'us-east-1'));
      await events.raise(joined('r2', 'bob', 'us-east-1'));
      const first = await store.claim('r1', 'tok-a', 10_000, clock);
      expect(first).toMatchObject({ attempts: 0, event: { event: 'room_started', seq: 1 } });
      expect(await other.claim('r1', 'tok-b', 10_000, clock)).toBeNull();
      // r2 goes on while r1's head is in flight.
      expect(await other.claim('r2', 'tok-c', 10_000, clock)).toMatchObject({ event: { roomId: 'r2', seq: 1 } });
      await store.ack('r1', 'tok-a', first!.entryId, clock);
      const second = await other.claim('r1', 'tok-b', 10_000, clock);
      expect(second).toMatchObject({ event: { event: 'participant_joined', seq: 2 } });
      await other.ack('r1', 'tok-b', second!.entryId, clock);
      expect(await store.claim('r1', 'tok-a', 10_000, clock)).toBeNull();
      expect(await store.dueRooms(clock, 10)).toEqual(['r2']);
    });

    it('a consumer that died: its claim lapses with the lease and the head is taken again', async () => {
      await events.raise(joined('r', 'alice', 'us-east-1'));
      const dead = await store.claim('r', 'tok-dead', 50, clock);
      expect(dead).not.toBeNull();
      await new Promise((r) => setTimeout(r, 120));
      // Redis expires the lease by its own clock, the memory store by the caller's.
      const again = await (await harness.open()).claim('r', 'tok-new', 10_000, clock + 120);
      expect(again?.entryId).toBe(dead!.entryId);
    });

    it('a failed attempt waits for its time and is counted; dead letters leave the queue and replay at its end', async () => {
      await events.raise(joined('r', 'alice', 'us-east-1'));
      const head = await store.claim('r', 't1', 10_000, clock);
      await store.retry('r', 't1', head!.entryId, clock + 1_000);
      expect(await store.dueRooms(clock + 999, 10)).toEqual([]);
      expect(await store.claim('r', 't2', 10_000, clock + 999)).toBeNull();
      const again = await store.claim('r', 't2', 10_000, clock + 1_000);
      expect(again).toMatchObject({ entryId: head!.entryId, attempts: 1 });
      await store.deadLetter(again!, 'r', 't2', 'receiver answered 500', clock + 1_000);

      const next = await store.claim('r', 't3', 10_000, clock + 1_000);
      expect(next).toMatchObject({ attempts: 0, event: { event: 'participant_joined' } });
      await store.ack('r', 't3', next!.entryId, clock + 1_000);
      const { total, deadLetters } = await store.listDead(10);
      expect(total).toBe(1);
      expect(deadLetters[0]).toMatchObject({ attempts: 2, error: 'receiver answered 500', event: { event: 'room_started', seq: 1 } });

      expect(await store.replayDead('1-1', clock)).toBe(false);
      expect(await store.replayDead(deadLetters[0]!.id, clock + 2_000)).toBe(true);
      expect(await store.replayDead(deadLetters[0]!.id, clock + 2_000)).toBe(false);
      expect((await store.listDead(10)).total).toBe(0);
      const replayed = await store.claim('r', 't4', 10_000, clock + 2_000);
      expect(replayed).toMatchObject({ attempts: 0, event: { id: deadLetters[0]!.event.id, seq: 1 } });
    });

    it('a stale consumer (lease lapsed, another took over) cannot retry or dead-letter the head', async () => {
      await events.raise(joined('r', 'alice', 'us-east-1'));
      const stale = await store.claim('r', 'old', 30, clock);
      await new Promise((r) => setTimeout(r, 80));
      const current = await store.claim('r', 'new', 10_000, clock + 80);
      await store.retry('r', 'old', stale!.entryId, clock + 60_000);
      await store.deadLetter(stale!, 'r', 'old', 'late', clock);
      expect((await store.listDead(10)).total).toBe(0);
      await store.ack('r', 'new', current!.entryId, clock);
      expect(await store.claim('r', 'x', 10_000, clock)).toMatchObject({ event: { seq: 2 } });
    });
  });
}
