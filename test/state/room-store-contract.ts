import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AllocateInput, AllocateOutcome, ParticipantRecord, RoomStore } from '../../router/state/types.ts';

/** Stores over one shared state: each `open()` is another router (for Redis, another connection). */
export interface RoomStoreHarness {
  open(): Promise<RoomStore>;
  /** Closes every store opened. */
  close(): Promise<void>;
}

export type RoomStoreHarnessFactory = (options: { roomIdleTtlMs: number }) => Promise<RoomStoreHarness>;

const T0 = 1_700_000_000_000;
const TTL_MS = 30_000;

export function participant(participantId: string, nodeId: string, overrides: Partial<ParticipantRecord> = {}): ParticipantRecord {
  const region = nodeId.replace(/-\d+$/, '');
  return {
    participantId,
    allocationId: `alloc-${participantId}`,
    region,
    nodeId,
    status: 'allocated',
    rttMs: { [region]: 12.345678901234567, 'eu-west': 80 },
    allocatedAtMs: T0,
    expiresAtMs: T0 + TTL_MS,
    ...overrides,
  };
}

export function allocation(
  roomId: string,
  record: ParticipantRecord,
  options: { home?: string; expectedHomeRegion?: string | null; nodeLimit?: number } = {},
): AllocateInput {
  const home = options.home ?? 'us-east-1';
  return {
    roomId,
    proposedHome: { region: home.replace(/-\d+$/, ''), nodeId: home },
    expectedHomeRegion: options.expectedHomeRegion ?? null,
    participant: record,
    nodeLimit: options.nodeLimit ?? 100,
    nowMs: T0,
  };
}

function expectOk(outcome: AllocateOutcome): Extract<AllocateOutcome, { status: 'ok' }> {
  expect(outcome.status).toBe('ok');
  return outcome as Extract<AllocateOutcome, { status: 'ok' }>;
}

/** Allocates as the router does: on 'stale', place again against the home that won. */
async function allocateLikeRouter(store: RoomStore, input: AllocateInput): Promise<AllocateOutcome> {
  for (;;) {
    const outcome = await store.allocate(input);
    if (outcome.status !== 'stale') return outcome;
    input = { ...input, expectedHomeRegion: outcome.room.homeRegion };
  }
}

/** The RoomStore contract; every implementation must pass it unchanged. */
export function describeRoomStoreContract(name: string, createHarness: RoomStoreHarnessFactory): void {
  describe(`RoomStore contract: ${name}`, () => {
    let harness: RoomStoreHarness;
    let store: RoomStore;

    beforeEach(async () => {
      harness = await createHarness({ roomIdleTtlMs: 60_000 });
      store = await harness.open();
    });
    afterEach(async () => {
      await harness.close();
    });

    it('pins the proposed home on the first allocation and records the participant', async () => {
      const alice = participant('alice', 'us-east-1');
      const outcome = expectOk(await store.allocate(allocation('r1', alice)));
      expect(outcome.room).toEqual({ roomId: 'r1', homeRegion: 'us-east', homeNodeId: 'us-east-1', epoch: 0, createdAtMs: T0 });
      expect(outcome.replaced).toBeNull();
      expect(await store.getRoom('r1')).toEqual({ room: outcome.room, participants: [alice] });
      expect(await store.getRoom('nope')).toBeNull();
      expect(await store.listRoomIds()).toEqual(['r1']);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1]]));
    });

    it('first pin wins: a later allocation that assumed an empty room is stale', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'), { home: 'us-east-1' })));
      const late = await store.allocate(allocation('r1', participant('bob', 'eu-west-1'), { home: 'eu-west-1', expectedHomeRegion: null }));
      expect(late).toMatchObject({ status: 'stale', room: { homeRegion: 'us-east', homeNodeId: 'us-east-1', epoch: 0 } });
      const state = await store.getRoom('r1');
      expect(state?.participants.map((p) => p.participantId)).toEqual(['alice']);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1]]));
    });

    it('detects a stale home and accepts the current one', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      const stale = await store.allocate(allocation('r1', participant('bob', 'eu-west-1'), { expectedHomeRegion: 'eu-west' }));
      expect(stale).toMatchObject({ status: 'stale', room: { homeRegion: 'us-east' } });
      const ok = expectOk(await store.allocate(allocation('r1', participant('bob', 'eu-west-1'), { home: 'eu-west-1', expectedHomeRegion: 'us-east' })));
      expect(ok.room.homeRegion).toBe('us-east');
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1], ['eu-west-1', 1]]));
    });

    it('refuses a full node without changing anything, counting reservations across rooms', async () => {
      expectOk(await store.allocate(allocation('r1', participant('a', 'us-east-1'), { nodeLimit: 2 })));
      expectOk(await store.allocate(allocation('r2', participant('b', 'us-east-1'), { nodeLimit: 2 })));
      expect(await store.allocate(allocation('r1', participant('c', 'us-east-1'), { expectedHomeRegion: 'us-east', nodeLimit: 2 }))).toEqual({ status: 'node_full' });
      expect(await store.allocate(allocation('r3', participant('d', 'us-east-1'), { nodeLimit: 2 }))).toEqual({ status: 'node_full' });
      expect(await store.getRoom('r3')).toBeNull();
      expect((await store.getRoom('r1'))?.participants).toHaveLength(1);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 2]]));
    });

    it('replacing a participant releases its earlier reservation', async () => {
      const first = participant('alice', 'us-east-1');
      expectOk(await store.allocate(allocation('r1', first)));
      const moved = participant('alice', 'us-east-2', { allocationId: 'alloc-2', allocatedAtMs: T0 + 5 });
      const outcome = expectOk(await store.allocate(allocation('r1', moved, { expectedHomeRegion: 'us-east' })));
      expect(outcome.replaced).toEqual(first);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-2', 1]]));
      expect((await store.getRoom('r1'))?.participants).toEqual([moved]);
      // Re-allocating on a full node succeeds when the slot it takes is its own.
      const again = participant('alice', 'us-east-2', { allocationId: 'alloc-3' });
      expectOk(await store.allocate(allocation('r1', again, { expectedHomeRegion: 'us-east', nodeLimit: 1 })));
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-2', 1]]));
    });

    it('marks only the current allocation joined', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      expect(await store.markJoined('r1', 'alice', 'stale-allocation')).toBe(false);
      expect(await store.markJoined('r1', 'nobody', 'alloc-nobody')).toBe(false);
      expect(await store.markJoined('nope', 'alice', 'alloc-alice')).toBe(false);
      expect(await store.markJoined('r1', 'alice', 'alloc-alice')).toBe(true);
      expect(await store.markJoined('r1', 'alice', 'alloc-alice')).toBe(true);
      expect((await store.getRoom('r1'))?.participants).toEqual([participant('alice', 'us-east-1', { status: 'joined' })]);
    });

    it('expires allocations not joined in time and releases their reservations; joined ones stay', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      expectOk(await store.allocate(allocation('r1', participant('bob', 'us-east-1', { expiresAtMs: T0 + 2 * TTL_MS }), { expectedHomeRegion: 'us-east' })));
      expectOk(await store.allocate(allocation('r2', participant('carol', 'us-east-2'))));
      expect(await store.markJoined('r2', 'carol', 'alloc-carol')).toBe(true);

      expect(await store.expireAllocations(T0 + TTL_MS - 1)).toEqual([]);
      expect(await store.expireAllocations(T0 + TTL_MS)).toEqual([{ roomId: 'r1', participant: participant('alice', 'us-east-1') }]);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1], ['us-east-2', 1]]));

      const expired = await store.expireAllocations(T0 + 100 * TTL_MS);
      expect(expired.map((e) => e.participant.participantId)).toEqual(['bob']);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-2', 1]]));
      expect((await store.getRoom('r1'))?.participants).toEqual([]);
      expect((await store.getRoom('r2'))?.participants.map((p) => p.status)).toEqual(['joined']);
    });

    it('a re-allocation moves the expiry: the earlier deadline no longer applies', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      const renewed = participant('alice', 'us-east-1', { allocationId: 'alloc-2', expiresAtMs: T0 + 3 * TTL_MS });
      expectOk(await store.allocate(allocation('r1', renewed, { expectedHomeRegion: 'us-east' })));
      expect(await store.expireAllocations(T0 + 2 * TTL_MS)).toEqual([]);
      expect(await store.expireAllocations(T0 + 3 * TTL_MS)).toEqual([{ roomId: 'r1', participant: renewed }]);
    });

    it('removes a participant, only the named allocation when one is given', async () => {
      const alice = participant('alice', 'us-east-1');
      expectOk(await store.allocate(allocation('r1', alice)));
      expect(await store.removeParticipant('r1', 'alice', 'other-allocation')).toBeNull();
      expect(await store.removeParticipant('r1', 'nobody')).toBeNull();
      expect(await store.removeParticipant('r1', 'alice', 'alloc-alice')).toEqual(alice);
      expect(await store.removeParticipant('r1', 'alice')).toBeNull();
      expect(await store.nodeCounts()).toEqual(new Map());
      expect(await store.expireAllocations(T0 + 100 * TTL_MS)).toEqual([]);
    });

    it('re-homes by compare-and-set on the epoch', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      expect(await store.rehome('r1', 1, { region: 'eu-west', nodeId: 'eu-west-1' })).toBeNull();
      expect(await store.rehome('nope', 0, { region: 'eu-west', nodeId: 'eu-west-1' })).toBeNull();
      const moved = await store.rehome('r1', 0, { region: 'eu-west', nodeId: 'eu-west-1' });
      expect(moved).toEqual({ roomId: 'r1', homeRegion: 'eu-west', homeNodeId: 'eu-west-1', epoch: 1, createdAtMs: T0 });
      expect((await store.getRoom('r1'))?.room).toEqual(moved);
      // The home changed: an allocation placed against the old home is stale.
      expect((await store.allocate(allocation('r1', participant('bob', 'us-east-1'), { expectedHomeRegion: 'us-east' }))).status).toBe('stale');
    });

    it('of two concurrent re-homes from two routers exactly one wins', async () => {
      const other = await harness.open();
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      for (let round = 0; round < 20; round++) {
        const results = await Promise.all([
          store.rehome('r1', round, { region: 'eu-west', nodeId: 'eu-west-1' }),
          other.rehome('r1', round, { region: 'apac', nodeId: 'apac-1' }),
        ]);
        expect(results.filter((r) => r !== null)).toHaveLength(1);
      }
      expect((await store.getRoom('r1'))?.room.epoch).toBe(20);
    });

    it('300 concurrent allocations from two routers: one home, every participant recorded once', async () => {
      const routers = [store, await harness.open()];
      const regions = ['us-east', 'us-west', 'eu-west', 'apac'];
      const outcomes = await Promise.all(
        Array.from({ length: 300 }, (_, i) => {
          const node = `${regions[i % regions.length]}-${i % 3}`;
          return allocateLikeRouter(routers[i % 2]!, allocation('busy', participant(`p${i}`, node), { home: node, nodeLimit: 1_000 }));
        }),
      );
      expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
      const homes = new Set(outcomes.map((o) => (o.status === 'ok' ? `${o.room.homeRegion}/${o.room.homeNodeId}` : '')));
      expect(homes.size).toBe(1);
      const state = await routers[1]!.getRoom('busy');
      expect(state?.participants).toHaveLength(300);
      expect(`${state?.room.homeRegion}/${state?.room.homeNodeId}`).toBe([...homes][0]);
      const counts = await store.nodeCounts();
      expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(300);
    });

    it('a burst never reserves past a node limit', async () => {
      const routers = [store, await harness.open()];
      const nodes = ['us-east-1', 'us-east-2', 'us-east-3'];
      expectOk(await store.allocate(allocation('burst', participant('first', 'us-east-1'), { nodeLimit: 40 })));
      const outcomes = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          routers[i % 2]!.allocate(allocation('burst', participant(`p${i}`, nodes[i % 3]!), { expectedHomeRegion: 'us-east', nodeLimit: 40 })),
        ),
      );
      expect(outcomes.filter((o) => o.status === 'ok')).toHaveLength(119);
      expect(outcomes.filter((o) => o.status === 'node_full')).toHaveLength(181);
      expect(await store.nodeCounts()).toEqual(new Map(nodes.map((n) => [n, 40])));
      expect((await store.getRoom('burst'))?.participants).toHaveLength(120);
    });

    it('keeps rooms whose ids look like key suffixes apart', async () => {
      expectOk(await store.allocate(allocation('a', participant('alice', 'us-east-1'))));
      expectOk(await store.allocate(allocation('a:participants', participant('bob', 'eu-west-1'), { home: 'eu-west-1' })));
      expectOk(await store.allocate(allocation('a%3Aparticipants', participant('carol', 'apac-1'), { home: 'apac-1' })));
      expect((await store.getRoom('a'))?.participants.map((p) => p.participantId)).toEqual(['alice']);
      expect((await store.getRoom('a:participants'))?.room.homeRegion).toBe('eu-west');
      expect((await store.getRoom('a%3Aparticipants'))?.room.homeRegion).toBe('apac');
      expect((await store.listRoomIds()).sort()).toEqual(['a', 'a%3Aparticipants', 'a:participants']);
    });

    it('returns copies: mutating a result does not change the stored state', async () => {
      const alice = participant('alice', 'us-east-1');
      expectOk(await store.allocate(allocation('r1', alice)));
      alice.nodeId = 'mutated';
      const state = await store.getRoom('r1');
      state!.participants[0]!.rttMs['us-east'] = 0;
      expect((await store.getRoom('r1'))?.participants[0]).toEqual(participant('alice', 'us-east-1'));
    });

    it('forgets an empty room after its idle TTL unless someone is allocated again', async () => {
      await harness.close();
      harness = await createHarness({ roomIdleTtlMs: 400 });
      store = await harness.open();
      expectOk(await store.allocate(allocation('idle', participant('alice', 'us-east-1'))));
      expectOk(await store.allocate(allocation('revived', participant('bob', 'us-east-1'))));
      await store.removeParticipant('idle', 'alice');
      expect((await store.expireAllocations(T0 + TTL_MS)).map((e) => e.roomId)).toEqual(['revived']);
      expect((await store.getRoom('idle'))?.participants).toEqual([]);
      await sleep(200);
      expectOk(await store.allocate(allocation('revived', participant('carol', 'us-east-1'), { expectedHomeRegion: 'us-east' })));
      await sleep(400);
      expect(await store.getRoom('idle')).toBeNull();
      expect(await store.listRoomIds()).toEqual(['revived']);
      expect((await store.getRoom('revived'))?.participants.map((p) => p.participantId)).toEqual(['carol']);
      // A forgotten room starts over: the next allocation pins a new home.
      const fresh = expectOk(await store.allocate(allocation('idle', participant('dave', 'eu-west-1'), { home: 'eu-west-1' })));
      expect(fresh.room).toMatchObject({ homeRegion: 'eu-west', epoch: 0 });
    });
  });
}
