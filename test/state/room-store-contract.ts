import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AllocateInput, AllocateOutcome, MovePlan, P2pAllocateInput, P2pParticipantRecord, ParticipantRecord, RoomStore } from '../../router/state/types.ts';
import type { NormalizedPolicy } from '../../shared/schemas/index.ts';

/** Stores over one shared state: each `open()` is another router (for Redis, another connection). */
export interface RoomStoreHarness {
  open(): Promise<RoomStore>;
  /** Closes every store opened. */
  close(): Promise<void>;
}

export type RoomStoreHarnessFactory = (options: { roomIdleTtlMs: number }) => Promise<RoomStoreHarness>;

const T0 = 1_700_000_000_000;
const TTL_MS = 30_000;
/** markJoined of a current allocation with no earlier nodes. */
const JOINED = { status: 'joined', earlierNodeIds: [] };

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
  options: { home?: string; expectedHomeRegion?: string | null; expectedVersion?: number; nodeLimit?: number; roomLimit?: number; policy?: NormalizedPolicy } = {},
): AllocateInput {
  const home = options.home ?? 'us-east-1';
  return {
    roomId,
    proposedHome: { region: home.replace(/-\d+$/, ''), nodeId: home },
    policy: options.policy ?? null,
    expectedHomeRegion: options.expectedHomeRegion ?? null,
    ...(options.expectedVersion !== undefined ? { expectedVersion: options.expectedVersion } : {}),
    participant: record,
    nodeLimit: options.nodeLimit ?? 100,
    roomLimit: options.roomLimit ?? 0,
    nowMs: T0,
  };
}

function expectOk(outcome: AllocateOutcome): Extract<AllocateOutcome, { status: 'ok' }> {
  expect(outcome.status).toBe('ok');
  return outcome as Extract<AllocateOutcome, { status: 'ok' }>;
}

function expectStale(outcome: AllocateOutcome): Extract<AllocateOutcome, { status: 'stale' }> {
  expect(outcome.status).toBe('stale');
  return outcome as Extract<AllocateOutcome, { status: 'stale' }>;
}

/** What one router remembers of a room: the home and version it last saw (0: none). */
interface RouterView {
  homeRegion: string | null;
  version: number;
}

/**
 * Allocates as the router does: first on its view, stating the view's version; on 'stale', again
 * on the room the store returned, checking the home only. The view follows what the router learns.
 */
async function allocateLikeRouter(store: RoomStore, view: RouterView, input: AllocateInput): Promise<AllocateOutcome> {
  let next: AllocateInput = { ...input, expectedHomeRegion: view.homeRegion, expectedVersion: view.version };
  for (;;) {
    const basisVersion = next.expectedVersion ?? view.version;
    const outcome = await store.allocate(next);
    if (outcome.status === 'ok' && outcome.previousVersion === basisVersion) Object.assign(view, { homeRegion: outcome.room.homeRegion, version: outcome.version });
    if (outcome.status !== 'stale') return outcome;
    const current = outcome.current;
    Object.assign(view, { homeRegion: current?.room.homeRegion ?? null, version: current?.version ?? 0 });
    next = { ...input, expectedHomeRegion: view.homeRegion };
  }
}

export function p2pParticipant(participantId: string, overrides: Partial<P2pParticipantRecord> = {}): P2pParticipantRecord {
  return {
    participantId,
    allocationId: `p2p-${participantId}`,
    status: 'allocated',
    rttMs: { 'us-east': 12.345678901234567, 'eu-west': 80 },
    allocatedAtMs: T0,
    leaseUntilMs: T0 + TTL_MS,
    ...overrides,
  };
}

export function p2pAllocation(roomId: string, record: P2pParticipantRecord, options: { maxParticipants?: number; nowMs?: number; policy?: NormalizedPolicy } = {}): P2pAllocateInput {
  return { roomId, policy: options.policy ?? null, participant: record, maxParticipants: options.maxParticipants ?? 4, nowMs: options.nowMs ?? T0 };
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
      expect(outcome.room).toEqual({ roomId: 'r1', homeRegion: 'us-east', homeNodeId: 'us-east-1', epoch: 0, createdAtMs: T0, policy: null });
      expect(outcome.replaced).toBeNull();
      expect(outcome.previousVersion).toBe(0);
      expect(outcome.version).toBeGreaterThan(0);
      expect(await store.getRoom('r1')).toEqual({ room: outcome.room, participants: [alice], plans: [], version: outcome.version });
      expect(await store.getRoom('nope')).toBeNull();
      expect(await store.listRoomIds()).toEqual(['r1']);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1]]));
    });

    it('first pin wins: a later allocation that assumed an empty room is stale', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'), { home: 'us-east-1' })));
      const late = await store.allocate(allocation('r1', participant('bob', 'eu-west-1'), { home: 'eu-west-1', expectedHomeRegion: null }));
      expect(late).toMatchObject({ status: 'stale', current: { room: { homeRegion: 'us-east', homeNodeId: 'us-east-1', epoch: 0 } } });
      const state = await store.getRoom('r1');
      expect(state?.participants.map((p) => p.participantId)).toEqual(['alice']);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1]]));
    });

    it('detects a stale home and accepts the current one', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      const stale = await store.allocate(allocation('r1', participant('bob', 'eu-west-1'), { expectedHomeRegion: 'eu-west' }));
      expect(stale).toMatchObject({ status: 'stale', current: { room: { homeRegion: 'us-east' } } });
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

    it('refuses a full room without changing anything; a participant already in it is not counted twice', async () => {
      expectOk(await store.allocate(allocation('r1', participant('a', 'us-east-1'), { roomLimit: 2 })));
      expectOk(await store.allocate(allocation('r1', participant('b', 'us-east-1'), { expectedHomeRegion: 'us-east', roomLimit: 2 })));
      const before = await store.getRoom('r1');
      expect(await store.allocate(allocation('r1', participant('c', 'us-east-2'), { expectedHomeRegion: 'us-east', roomLimit: 2 }))).toEqual({ status: 'room_full' });
      expect(await store.getRoom('r1')).toEqual(before);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 2]]));
      // b allocating again (a failover, a move) takes its own place.
      const again = participant('b', 'us-east-2', { allocationId: 'alloc-b-2' });
      expectOk(await store.allocate(allocation('r1', again, { expectedHomeRegion: 'us-east', roomLimit: 2 })));
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1], ['us-east-2', 1]]));
      // 0: no limit.
      expectOk(await store.allocate(allocation('r1', participant('c', 'us-east-2'), { expectedHomeRegion: 'us-east', roomLimit: 0 })));
      expect((await store.getRoom('r1'))?.participants).toHaveLength(3);
    });

    it('a burst from two routers never fills a room past its limit', async () => {
      const routers = [store, await harness.open()];
      expectOk(await store.allocate(allocation('crowd', participant('first', 'us-east-1'), { roomLimit: 25 })));
      const outcomes = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          routers[i % 2]!.allocate(allocation('crowd', participant(`p${i}`, `us-east-${1 + (i % 3)}`), { expectedHomeRegion: 'us-east', roomLimit: 25 })),
        ),
      );
      expect(outcomes.filter((o) => o.status === 'ok')).toHaveLength(24);
      expect(outcomes.filter((o) => o.status === 'room_full')).toHaveLength(76);
      expect((await store.getRoom('crowd'))?.participants).toHaveLength(25);
      expect([...(await store.nodeCounts()).values()].reduce((a, b) => a + b, 0)).toBe(25);
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

    it('marks only the current allocation joined, and says why another is not current', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      expect(await store.markJoined('r1', 'alice', 'stale-allocation')).toEqual({ status: 'replaced' });
      expect(await store.markJoined('r1', 'nobody', 'alloc-nobody')).toEqual({ status: 'unknown' });
      expect(await store.markJoined('nope', 'alice', 'alloc-alice')).toEqual({ status: 'unknown' });
      expect(await store.markJoined('r1', 'alice', 'alloc-alice')).toEqual(JOINED);
      expect(await store.markJoined('r1', 'alice', 'alloc-alice')).toEqual(JOINED);
      expect((await store.getRoom('r1'))?.participants).toEqual([participant('alice', 'us-east-1', { status: 'joined' })]);
    });

    it('a newer allocation on another node hands out the earlier nodes once, at its join', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      expect(await store.markJoined('r1', 'alice', 'alloc-alice')).toEqual(JOINED);
      const second = participant('alice', 'us-east-2', { allocationId: 'alloc-2' });
      expect(expectOk(await store.allocate(allocation('r1', second, { expectedHomeRegion: 'us-east' }))).replaced?.allocationId).toBe('alloc-alice');
      // Replaced again before joining: both earlier nodes are handed out; the node it is on is not.
      const third = participant('alice', 'us-east-3', { allocationId: 'alloc-3' });
      expectOk(await store.allocate(allocation('r1', third, { expectedHomeRegion: 'us-east' })));
      expect(await store.markJoined('r1', 'alice', 'alloc-2')).toEqual({ status: 'replaced' });
      const joined = await store.markJoined('r1', 'alice', 'alloc-3');
      expect(joined.status === 'joined' && [...joined.earlierNodeIds].sort()).toEqual(['us-east-1', 'us-east-2']);
      expect(await store.markJoined('r1', 'alice', 'alloc-3')).toEqual(JOINED);
      // Back on an earlier node: that node is not an earlier one any more.
      const fourth = participant('alice', 'us-east-1', { allocationId: 'alloc-4' });
      expectOk(await store.allocate(allocation('r1', fourth, { expectedHomeRegion: 'us-east' })));
      expect(await store.markJoined('r1', 'alice', 'alloc-4')).toEqual({ status: 'joined', earlierNodeIds: ['us-east-3'] });
    });

    it('kick: removes the participant, refuses its grants issued until then, and is remembered until untilMs', async () => {
      const alice = participant('alice', 'us-east-1');
      expectOk(await store.allocate(allocation('r1', alice)));
      expectOk(await store.allocate(allocation('r1', participant('bob', 'us-east-2'), { expectedHomeRegion: 'us-east' })));
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-2', { allocationId: 'alloc-2' }), { expectedHomeRegion: 'us-east' })));
      expect(await store.kick('r1', 'nobody', T0, T0 + 60_000)).toBeNull();
      const kicked = await store.kick('r1', 'alice', T0 + 1_000, Date.now() + 60_000);
      expect(kicked).toEqual({ removed: participant('alice', 'us-east-2', { allocationId: 'alloc-2' }), earlierNodeIds: ['us-east-1'] });
      expect((await store.getRoom('r1'))?.participants.map((p) => p.participantId)).toEqual(['bob']);
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-2', 1]]));
      expect(await store.markJoined('r1', 'alice', 'alloc-2')).toEqual({ status: 'removed' });
      // A grant issued at or before the kick is refused, and changes nothing; a later one, or none (API key), is not.
      const version = (await store.getRoom('r1'))!.version;
      const again = (grantIssuedAtMs?: number) =>
        store.allocate({ ...allocation('r1', participant('alice', 'us-east-1', { allocationId: `alloc-${grantIssuedAtMs ?? 'key'}` }), { expectedHomeRegion: 'us-east' }), ...(grantIssuedAtMs !== undefined ? { grantIssuedAtMs } : {}) });
      expect(await again(T0)).toEqual({ status: 'kicked' });
      expect(await again(T0 + 1_000)).toEqual({ status: 'kicked' });
      expect((await store.getRoom('r1'))!.version).toBe(version);
      expectOk(await again(T0 + 1_001));
      expectOk(await again());
      // Forgotten after untilMs.
      expectOk(await store.allocate(allocation('r2', participant('carol', 'us-east-1'))));
      expect(await store.kick('r2', 'carol', T0, Date.now() + 300)).not.toBeNull();
      const carolAgain = { ...allocation('r2', participant('carol', 'us-east-1'), { expectedHomeRegion: 'us-east' }), grantIssuedAtMs: T0 };
      expect(await store.allocate(carolAgain)).toEqual({ status: 'kicked' });
      await sleep(400);
      expectOk(await store.allocate(carolAgain));
    });

    it('expires allocations not joined in time and releases their reservations; joined ones stay', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      expectOk(await store.allocate(allocation('r1', participant('bob', 'us-east-1', { expiresAtMs: T0 + 2 * TTL_MS }), { expectedHomeRegion: 'us-east' })));
      expectOk(await store.allocate(allocation('r2', participant('carol', 'us-east-2'))));
      expect(await store.markJoined('r2', 'carol', 'alloc-carol')).toEqual(JOINED);

      expect(await store.expireAllocations(T0 + TTL_MS - 1)).toEqual([]);
      expect(await store.expireAllocations(T0 + TTL_MS)).toEqual([{ roomId: 'r1', participant: participant('alice', 'us-east-1'), earlierNodeIds: [] }]);
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
      expect(await store.expireAllocations(T0 + 3 * TTL_MS)).toEqual([{ roomId: 'r1', participant: renewed, earlierNodeIds: [] }]);
    });

    it('an allocation that replaced a joined one and expires hands out the earlier node', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      expect(await store.markJoined('r1', 'alice', 'alloc-alice')).toEqual(JOINED);
      const unjoined = participant('alice', 'us-east-2', { allocationId: 'alloc-2' });
      expectOk(await store.allocate(allocation('r1', unjoined, { expectedHomeRegion: 'us-east' })));
      expect(await store.expireAllocations(T0 + TTL_MS)).toEqual([{ roomId: 'r1', participant: unjoined, earlierNodeIds: ['us-east-1'] }]);
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
      expect(moved).toEqual({ roomId: 'r1', homeRegion: 'eu-west', homeNodeId: 'eu-west-1', epoch: 1, createdAtMs: T0, policy: null });
      expect((await store.getRoom('r1'))?.room).toEqual(moved);
      // The home changed: an allocation placed against the old home is stale.
      expect((await store.allocate(allocation('r1', participant('bob', 'us-east-1'), { expectedHomeRegion: 'us-east' }))).status).toBe('stale');
    });

    it('plans moves by compare-and-set on the version, not over a live plan; an allocation uses up its plan, a removal drops it', async () => {
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      const version = expectOk(await store.allocate(allocation('r1', participant('bob', 'us-east-1'), { expectedHomeRegion: 'us-east' }))).version;
      const plan = (participantId: string, expiresAtMs: number): MovePlan => ({
        participantId,
        allocationId: `alloc-${participantId}`,
        region: 'apac',
        nodeId: 'apac-1',
        why: 'room mean 120 → 80 ms',
        plannedAtMs: T0,
        expiresAtMs,
      });
      expect(await store.planMoves('r1', version + 1_000, [plan('alice', T0 + 10_000)], T0)).toBeNull();
      expect(await store.planMoves('nope', 0, [plan('alice', T0 + 10_000)], T0)).toBeNull();
      const planned = await store.planMoves('r1', version, [plan('alice', T0 + 10_000), plan('bob', T0 + 10_000)], T0);
      expect(planned).toBeGreaterThan(version);
      const state = await store.getRoom('r1');
      expect(state?.version).toBe(planned);
      expect(state?.plans.sort((a, b) => a.participantId.localeCompare(b.participantId))).toEqual([plan('alice', T0 + 10_000), plan('bob', T0 + 10_000)]);
      // A live plan blocks another one, even at the current version; once expired it does not.
      expect(await store.planMoves('r1', planned!, [plan('bob', T0 + 20_000)], T0 + 5_000)).toBeNull();
      // An allocation placed on the old version is stale and learns the plans.
      expect(expectStale(await store.allocate(allocation('r1', participant('carol', 'us-east-1'), { expectedHomeRegion: 'us-east', expectedVersion: version }))).current?.plans).toHaveLength(2);
      expectOk(await store.allocate(allocation('r1', participant('alice', 'apac-1', { allocationId: 'alloc-2' }), { expectedHomeRegion: 'us-east' })));
      expect((await store.getRoom('r1'))?.plans.map((p) => p.participantId)).toEqual(['bob']);
      await store.removeParticipant('r1', 'bob');
      const after = await store.getRoom('r1');
      expect(after?.plans).toEqual([]);
      expect(await store.planMoves('r1', after!.version, [plan('alice', T0 + 30_000)], T0 + 11_000)).toBeGreaterThan(after!.version);
    });

    it('of two routers planning the same room at once exactly one wins', async () => {
      const other = await harness.open();
      expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      for (let round = 0; round < 20; round++) {
        const version = (await store.getRoom('r1'))!.version;
        const plan = (expiresAtMs: number): MovePlan => ({ participantId: 'alice', allocationId: 'alloc-alice', region: 'apac', nodeId: 'apac-1', why: 'test', plannedAtMs: T0, expiresAtMs });
        const results = await Promise.all([store.planMoves('r1', version, [plan(T0 + round)], T0 + round), other.planMoves('r1', version, [plan(T0 + round)], T0 + round)]);
        expect(results.filter((r) => r !== null)).toHaveLength(1);
      }
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
      const views: RouterView[] = [{ homeRegion: null, version: 0 }, { homeRegion: null, version: 0 }];
      const regions = ['us-east', 'us-west', 'eu-west', 'apac'];
      const outcomes = await Promise.all(
        Array.from({ length: 300 }, (_, i) => {
          const node = `${regions[i % regions.length]}-${i % 3}`;
          return allocateLikeRouter(routers[i % 2]!, views[i % 2]!, allocation('busy', participant(`p${i}`, node), { home: node, nodeLimit: 1_000 }));
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

    it('every change gives the room a version never used before; marking a participant joined keeps it', async () => {
      const seen: number[] = [];
      const current = async () => (await store.getRoom('r1'))!.version;
      const first = expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'))));
      seen.push(first.version);
      expect(await current()).toBe(first.version);
      expect(await store.markJoined('r1', 'alice', 'alloc-alice')).toEqual(JOINED);
      expect(await current()).toBe(first.version);
      const second = expectOk(await store.allocate(allocation('r1', participant('bob', 'us-east-2'), { expectedHomeRegion: 'us-east' })));
      expect(second.previousVersion).toBe(first.version);
      seen.push(second.version);
      // Other rooms take versions from the same sequence.
      expectOk(await store.allocate(allocation('r2', participant('carol', 'us-east-1'))));
      seen.push((await store.getRoom('r2'))!.version);
      await store.rehome('r1', 0, { region: 'eu-west', nodeId: 'eu-west-1' });
      seen.push(await current());
      expect(await store.expireAllocations(T0 + TTL_MS)).toHaveLength(2);
      seen.push(await current());
      await store.removeParticipant('r1', 'alice');
      seen.push(await current());
      expect(new Set(seen).size).toBe(seen.length);
      // A refused allocation and a failed removal change nothing.
      expect((await store.allocate(allocation('r1', participant('dave', 'us-east-1'), { expectedHomeRegion: 'apac' }))).status).toBe('stale');
      expect(await store.removeParticipant('r1', 'nobody')).toBeNull();
      expect(await current()).toBe(seen.at(-1));
    });

    it('an allocation stating a version is stale once anything changed, and gets the room as it is now', async () => {
      const other = await harness.open();
      const alice = participant('alice', 'us-east-1');
      const bob = participant('bob', 'eu-west-1', { allocatedAtMs: T0 + 1 });
      const v1 = expectOk(await store.allocate(allocation('r1', alice, { expectedVersion: 0 }))).version;
      // The other router saw the room at v1 too and adds bob.
      const v2 = expectOk(await other.allocate(allocation('r1', bob, { expectedHomeRegion: 'us-east', expectedVersion: v1 }))).version;
      // This router still places on v1: same home, but not the same room any more.
      const carol = participant('carol', 'us-east-1', { allocatedAtMs: T0 + 2 });
      const stale = expectStale(await store.allocate(allocation('r1', carol, { expectedHomeRegion: 'us-east', expectedVersion: v1 })));
      expect(stale.current).toEqual(await other.getRoom('r1'));
      expect(stale.current).toMatchObject({ version: v2, room: { homeRegion: 'us-east' }, participants: [alice, bob] });
      expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1], ['eu-west-1', 1]]));
      // Placed again on the room it got back: no read needed.
      const ok = expectOk(await store.allocate(allocation('r1', carol, { expectedHomeRegion: 'us-east', expectedVersion: v2 })));
      expect(ok.previousVersion).toBe(v2);
      expect((await other.getRoom('r1'))?.participants).toEqual([alice, bob, carol]);
      // Two routers allocating on the same version: exactly one wins.
      const results = await Promise.all([
        store.allocate(allocation('r1', participant('dave', 'us-east-1'), { expectedHomeRegion: 'us-east', expectedVersion: ok.version })),
        other.allocate(allocation('r1', participant('erin', 'us-east-1'), { expectedHomeRegion: 'us-east', expectedVersion: ok.version })),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['ok', 'stale']);
    });

    it('version 0 is a room that does not exist', async () => {
      const missing = expectStale(await store.allocate(allocation('r1', participant('alice', 'us-east-1'), { expectedVersion: 7 })));
      expect(missing.current).toBeNull();
      expect(await store.getRoom('r1')).toBeNull();
      expect(await store.listRoomIds()).toEqual([]);
      expect(await store.nodeCounts()).toEqual(new Map());
      const created = expectOk(await store.allocate(allocation('r1', participant('alice', 'us-east-1'), { expectedVersion: 0 })));
      const existing = expectStale(await store.allocate(allocation('r1', participant('bob', 'us-east-1'), { expectedVersion: 0 })));
      expect(existing.current?.version).toBe(created.version);
      expect(existing.current?.participants.map((p) => p.participantId)).toEqual(['alice']);
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
      const forgottenVersion = (await store.getRoom('idle'))!.version;
      expect((await store.expireAllocations(T0 + TTL_MS)).map((e) => e.roomId)).toEqual(['revived']);
      expect((await store.getRoom('idle'))?.participants).toEqual([]);
      await sleep(200);
      expectOk(await store.allocate(allocation('revived', participant('carol', 'us-east-1'), { expectedHomeRegion: 'us-east' })));
      await sleep(400);
      expect(await store.getRoom('idle')).toBeNull();
      expect(await store.listRoomIds()).toEqual(['revived']);
      expect((await store.getRoom('revived'))?.participants.map((p) => p.participantId)).toEqual(['carol']);
      // A forgotten room starts over: the next allocation pins a new home, at a version never seen.
      const fresh = expectOk(await store.allocate(allocation('idle', participant('dave', 'eu-west-1'), { home: 'eu-west-1' })));
      expect(fresh.room).toMatchObject({ homeRegion: 'eu-west', epoch: 0 });
      expect(fresh.previousVersion).toBe(0);
      expect(fresh.version).toBeGreaterThan(forgottenVersion);
    });

    describe('region policy', () => {
      const EU: NormalizedPolicy = { allowedRegions: ['eu-west'], preferredRegions: [], allowP2p: false };
      const EU_US: NormalizedPolicy = { allowedRegions: ['us-east', 'eu-west'], preferredRegions: ['eu-west'], allowP2p: true };

      it('is fixed with the pin: later allocations with another policy, or none, are refused and change nothing', async () => {
        const first = expectOk(await store.allocate(allocation('res', participant('alice', 'eu-west-1'), { home: 'eu-west-1', policy: EU })));
        expect(first.room.policy).toEqual(EU);
        const before = await store.getRoom('res');
        expect(before?.room.policy).toEqual(EU);
        for (const policy of [EU_US, undefined]) {
          expect(await store.allocate(allocation('res', participant('bob', 'eu-west-1'), { home: 'eu-west-1', expectedHomeRegion: 'eu-west', ...(policy ? { policy } : {}) }))).toEqual({
            status: 'policy_conflict',
            policy: EU,
          });
        }
        expect(await store.getRoom('res')).toEqual(before);
        expect(await store.nodeCounts()).toEqual(new Map([['eu-west-1', 1]]));
        // The same policy is accepted; a room without one refuses a policy too.
        expectOk(await store.allocate(allocation('res', participant('bob', 'eu-west-1'), { home: 'eu-west-1', expectedHomeRegion: 'eu-west', policy: EU })));
        expectOk(await store.allocate(allocation('open', participant('carol', 'us-east-1'))));
        expect(await store.allocate(allocation('open', participant('dave', 'us-east-1'), { expectedHomeRegion: 'us-east', policy: EU }))).toEqual({ status: 'policy_conflict', policy: null });
        // A stale answer and a re-home carry the policy.
        const stale = expectStale(await store.allocate(allocation('res', participant('erin', 'eu-west-1'), { expectedHomeRegion: 'eu-west', expectedVersion: 0, policy: EU })));
        expect(stale.current?.room.policy).toEqual(EU);
        expect((await store.rehome('res', 0, { region: 'eu-west', nodeId: 'eu-west-2' }))?.policy).toEqual(EU);
      });

      it('expires with the room: a room forgotten after its idle TTL takes a new policy', async () => {
        await harness.close();
        harness = await createHarness({ roomIdleTtlMs: 300 });
        store = await harness.open();
        expectOk(await store.allocate(allocation('ttl', participant('alice', 'eu-west-1'), { home: 'eu-west-1', policy: EU })));
        await store.removeParticipant('ttl', 'alice');
        expect((await store.getRoom('ttl'))?.room.policy).toEqual(EU);
        await sleep(500);
        expect(await store.getRoom('ttl')).toBeNull();
        const again = expectOk(await store.allocate(allocation('ttl', participant('bob', 'us-east-1'), { policy: EU_US })));
        expect(again.room.policy).toEqual(EU_US);
      });

      it('holds for P2P rooms too, and carries over from an emptied SFU room', async () => {
        expect((await store.allocateP2p(p2pAllocation('mesh', p2pParticipant('a'), { policy: EU_US }))).status).toBe('ok');
        expect((await store.getP2pRoom('mesh', T0))?.policy).toEqual(EU_US);
        expect(await store.allocateP2p(p2pAllocation('mesh', p2pParticipant('b'), { policy: EU }))).toEqual({ status: 'policy_conflict', policy: EU_US });
        expect(await store.allocate(allocation('mesh', participant('c', 'eu-west-1'), { home: 'eu-west-1' }))).toEqual({ status: 'policy_conflict', policy: EU_US });
        expect(await store.allocate(allocation('mesh', participant('c', 'eu-west-1'), { home: 'eu-west-1', policy: EU_US }))).toEqual({ status: 'p2p' });

        expectOk(await store.allocate(allocation('emptied', participant('alice', 'eu-west-1'), { home: 'eu-west-1', policy: EU_US })));
        await store.removeParticipant('emptied', 'alice');
        expect(await store.allocateP2p(p2pAllocation('emptied', p2pParticipant('bob')))).toEqual({ status: 'policy_conflict', policy: EU_US });
        expect((await store.allocateP2p(p2pAllocation('emptied', p2pParticipant('bob'), { policy: EU_US }))).status).toBe('ok');
        expect((await store.getP2pRoom('emptied', T0))?.policy).toEqual(EU_US);
      });
    });

    describe('P2P fallback rooms', () => {
      const ids = (room: { participants: Array<{ participantId: string }> } | null) => room?.participants.map((p) => p.participantId) ?? null;

      it('records participants up to the mesh size; the next is refused, a returning one replaces its record', async () => {
        for (const id of ['a', 'b', 'c']) expect(await store.allocateP2p(p2pAllocation('mesh', p2pParticipant(id, { allocatedAtMs: T0 + id.charCodeAt(0) }), { maxParticipants: 3 }))).toMatchObject({ status: 'ok', replaced: null });
        const full = await store.allocateP2p(p2pAllocation('mesh', p2pParticipant('d'), { maxParticipants: 3 }));
        expect(full.status).toBe('full');
        expect(ids(full.status === 'full' ? full.room : null)).toEqual(['a', 'b', 'c']);
        const again = await store.allocateP2p(p2pAllocation('mesh', p2pParticipant('b', { allocationId: 'p2p-b-2', allocatedAtMs: T0 + 98 }), { maxParticipants: 3 }));
        expect(again).toMatchObject({ status: 'ok', replaced: { allocationId: 'p2p-b' } });
        const room = await store.getP2pRoom('mesh', T0);
        expect(room?.participants.find((p) => p.participantId === 'b')).toEqual(p2pParticipant('b', { allocationId: 'p2p-b-2', allocatedAtMs: T0 + 98 }));
        // P2P participants hold no SFU capacity, and a P2P room is no SFU room.
        expect(await store.nodeCounts()).toEqual(new Map());
        expect(await store.getRoom('mesh')).toBeNull();
        expect(await store.getP2pRoom('other', T0)).toBeNull();
      });

      it('a room is never P2P and on an SFU at once: each mode refuses while the other holds participants', async () => {
        expectOk(await store.allocate(allocation('sfu-room', participant('alice', 'us-east-1'))));
        expect(await store.allocateP2p(p2pAllocation('sfu-room', p2pParticipant('bob')))).toEqual({ status: 'sfu' });
        expect(await store.getP2pRoom('sfu-room', T0)).toBeNull();

        expect((await store.allocateP2p(p2pAllocation('p2p-room', p2pParticipant('carol')))).status).toBe('ok');
        expect(await store.allocate(allocation('p2p-room', participant('dave', 'us-east-1')))).toEqual({ status: 'p2p' });
        expect(await store.getRoom('p2p-room')).toBeNull();
        expect(await store.nodeCounts()).toEqual(new Map([['us-east-1', 1]]));

        // Ending P2P mode lets the room go to an SFU; ending it twice says it was not P2P.
        expect(await store.endP2p('p2p-room')).toBe(true);
        expect(await store.endP2p('p2p-room')).toBe(false);
        expectOk(await store.allocate(allocation('p2p-room', participant('dave', 'us-east-1'))));
        expect(await store.renewP2p('p2p-room', [{ participantId: 'carol', allocationId: 'p2p-carol' }], T0 + 60_000, T0)).toBeNull();
      });

      it('an SFU room left empty gives way to a P2P room', async () => {
        expectOk(await store.allocate(allocation('emptied', participant('alice', 'us-east-1'))));
        await store.removeParticipant('emptied', 'alice');
        expect((await store.allocateP2p(p2pAllocation('emptied', p2pParticipant('bob')))).status).toBe('ok');
        expect(await store.getRoom('emptied')).toBeNull();
        expect(await store.allocate(allocation('emptied', participant('alice', 'us-east-1')))).toEqual({ status: 'p2p' });
      });

      it('concurrent allocations in both modes from two routers leave the room in one mode only', async () => {
        const other = await harness.open();
        for (let i = 0; i < 10; i++) {
          const roomId = `race-${i}`;
          const [sfu, p2p] = await Promise.all([
            (i % 2 ? store : other).allocate(allocation(roomId, participant(`s${i}`, 'us-east-1'))),
            (i % 2 ? other : store).allocateP2p(p2pAllocation(roomId, p2pParticipant(`p${i}`))),
          ]);
          const sfuRoom = await store.getRoom(roomId);
          const p2pRoom = await store.getP2pRoom(roomId, T0);
          expect([sfu.status, p2p.status].sort()).toEqual(sfu.status === 'ok' ? ['ok', 'sfu'] : ['ok', 'p2p']);
          expect((sfuRoom === null) !== (p2pRoom === null)).toBe(true);
        }
      });

      it('leases: an expired participant no longer counts, renewals keep connected ones, the last one leaving ends the room', async () => {
        expect((await store.allocateP2p(p2pAllocation('lease', p2pParticipant('a', { leaseUntilMs: T0 + 1_000 }), { maxParticipants: 2 }))).status).toBe('ok');
        expect((await store.allocateP2p(p2pAllocation('lease', p2pParticipant('b', { leaseUntilMs: T0 + 5_000 }), { maxParticipants: 2 }))).status).toBe('ok');
        expect((await store.allocateP2p(p2pAllocation('lease', p2pParticipant('c'), { maxParticipants: 2 }))).status).toBe('full');
        // At T0 + 2 s `a` has expired: `c` takes its place.
        expect((await store.allocateP2p(p2pAllocation('lease', p2pParticipant('c', { leaseUntilMs: T0 + 9_000 }), { maxParticipants: 2, nowMs: T0 + 2_000 }))).status).toBe('ok');
        expect(ids(await store.getP2pRoom('lease', T0 + 2_000))).toEqual(['b', 'c']);

        // Renewing: only current allocations, marked connected; a stale allocation id is ignored.
        const renewed = await store.renewP2p('lease', [{ participantId: 'b', allocationId: 'p2p-b' }, { participantId: 'c', allocationId: 'old' }], T0 + 20_000, T0 + 3_000);
        expect(renewed?.participants.map((p) => [p.participantId, p.status, p.leaseUntilMs])).toEqual([['b', 'connected', T0 + 20_000], ['c', 'allocated', T0 + 9_000]]);
        expect(ids(await store.getP2pRoom('lease', T0 + 10_000))).toEqual(['b']);
        expect(await store.removeP2pParticipant('lease', 'b', 'wrong', T0 + 10_000)).toBe(false);
        expect(await store.removeP2pParticipant('lease', 'b', 'p2p-b', T0 + 10_000)).toBe(true);
        expect(await store.getP2pRoom('lease', T0 + 10_000)).toBeNull();
        expect(await store.renewP2p('lease', [{ participantId: 'b', allocationId: 'p2p-b' }], T0 + 30_000, T0 + 10_000)).toBeNull();
        // With no P2P participant left, the room may go to an SFU.
        expectOk(await store.allocate({ ...allocation('lease', participant('d', 'us-east-1')), nowMs: T0 + 10_000 }));
      });
    });
  });
}
