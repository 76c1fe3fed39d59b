import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NodeRegistryStore } from '../../router/state/types.ts';
import type { Heartbeat, NodeRegistration } from '../../shared/schemas/index.ts';

/** Registries over one shared state: each `open()` is another router. */
export interface NodeRegistryHarness {
  open(): Promise<NodeRegistryStore>;
  close(): Promise<void>;
}

function registration(nodeId: string): NodeRegistration {
  return {
    nodeId,
    region: 'us-east',
    controlUrl: `http://127.0.0.1:7001/${nodeId}`,
    signalingUrl: 'http://127.0.0.1:7001/signal',
    probeUrl: 'http://127.0.0.1:7001/probe',
    maxParticipants: 100,
    version: '0.1.0',
  };
}

function heartbeat(nodeId: string, seq: number, participants = seq): Heartbeat {
  return {
    nodeId,
    seq,
    load: { cpu: 0.123456789012345, memory: 0.2, participants, rooms: 1, transports: 2, producers: 3, consumers: 4, workers: 1 },
    draining: false,
    cordoned: false,
    maxParticipants: 100,
    peerRtt: seq === 0 ? {} : { 'eu-west-1': { rttMs: 80.5, medianMs: 80, jitterMs: 1.5, loss: 0, samples: 10 } },
  };
}

/** The NodeRegistryStore contract; every implementation must pass it unchanged. */
export function describeNodeRegistryContract(name: string, createHarness: () => Promise<NodeRegistryHarness>): void {
  describe(`NodeRegistryStore contract: ${name}`, () => {
    let harness: NodeRegistryHarness;
    let registry: NodeRegistryStore;

    beforeEach(async () => {
      harness = await createHarness();
      registry = await harness.open();
    });
    afterEach(async () => {
      await harness.close();
    });

    it('registers a node with no heartbeat yet', async () => {
      await registry.register(registration('n1'), 1_000);
      expect(await registry.list()).toEqual([{ registration: registration('n1'), registeredAtMs: 1_000, lastHeartbeatMs: 1_000, heartbeat: null }]);
    });

    it('nodes named like Object.prototype keys, with and without a heartbeat', async () => {
      for (const id of ['constructor', '__proto__', 'toString']) await registry.register(registration(id), 1_000);
      expect(await registry.heartbeat(heartbeat('toString', 0), 1_500)).toBe(true);
      const listed = new Map((await registry.list()).map((r) => [r.registration.nodeId, r]));
      expect([...listed.keys()].sort()).toEqual(['__proto__', 'constructor', 'toString']);
      expect(listed.get('constructor')).toEqual({ registration: registration('constructor'), registeredAtMs: 1_000, lastHeartbeatMs: 1_000, heartbeat: null });
      expect(listed.get('__proto__')?.heartbeat).toBeNull();
      expect(listed.get('toString')?.heartbeat).toEqual(heartbeat('toString', 0));
    });

    it('records heartbeats of known nodes only', async () => {
      expect(await registry.heartbeat(heartbeat('ghost', 1), 1_000)).toBe(false);
      await registry.register(registration('n1'), 1_000);
      expect(await registry.heartbeat(heartbeat('n1', 0), 1_500)).toBe(true);
      expect(await registry.list()).toEqual([{ registration: registration('n1'), registeredAtMs: 1_000, lastHeartbeatMs: 1_500, heartbeat: heartbeat('n1', 0) }]);
    });

    it('ignores a heartbeat older than the one recorded', async () => {
      await registry.register(registration('n1'), 1_000);
      expect(await registry.heartbeat(heartbeat('n1', 5), 2_000)).toBe(true);
      expect(await registry.heartbeat(heartbeat('n1', 4), 3_000)).toBe(true);
      const [node] = await registry.list();
      expect(node?.heartbeat?.seq).toBe(5);
      expect(node?.lastHeartbeatMs).toBe(2_000);
      expect(await registry.heartbeat(heartbeat('n1', 6), 4_000)).toBe(true);
      expect((await registry.list())[0]?.heartbeat).toEqual(heartbeat('n1', 6));
    });

    it('a new registration starts the heartbeat sequence again (restarted agent)', async () => {
      await registry.register(registration('n1'), 1_000);
      await registry.heartbeat(heartbeat('n1', 50), 2_000);
      await registry.register(registration('n1'), 3_000);
      expect((await registry.list())[0]).toMatchObject({ registeredAtMs: 3_000, lastHeartbeatMs: 3_000, heartbeat: null });
      await registry.heartbeat(heartbeat('n1', 1), 3_500);
      expect((await registry.list())[0]?.heartbeat?.seq).toBe(1);
    });

    it('deregisters: the node is gone and its heartbeats are refused', async () => {
      await registry.register(registration('n1'), 1_000);
      await registry.register(registration('n2'), 1_000);
      await registry.deregister('n1');
      await registry.deregister('unknown');
      expect((await registry.list()).map((n) => n.registration.nodeId)).toEqual(['n2']);
      expect(await registry.heartbeat(heartbeat('n1', 1), 2_000)).toBe(false);
    });

    it('is shared by routers', async () => {
      const other = await harness.open();
      await registry.register(registration('n1'), 1_000);
      expect(await other.heartbeat(heartbeat('n1', 3), 2_000)).toBe(true);
      expect((await registry.list())[0]?.heartbeat?.seq).toBe(3);
    });

    it("every read sees each node's latest heartbeat, whichever router wrote it, through re-registrations and removals", async () => {
      const other = await harness.open();
      for (const id of ['n1', 'n2', 'constructor']) await registry.register(registration(id), 1_000);
      const seen = async () => Object.fromEntries((await registry.list()).map((n) => [n.registration.nodeId, [n.heartbeat?.seq ?? null, n.lastHeartbeatMs]]));
      // More reads than heartbeats, as a router refreshing four times per node heartbeat.
      for (let seq = 1; seq <= 20; seq++) {
        const writer = seq % 2 === 0 ? registry : other;
        await writer.heartbeat(heartbeat('n1', seq), 1_000 + seq);
        if (seq % 3 === 0) await writer.heartbeat(heartbeat('constructor', seq), 2_000 + seq);
        const expected = { n1: [seq, 1_000 + seq], n2: [null, 1_000], constructor: seq >= 3 ? [seq - (seq % 3), 2_000 + seq - (seq % 3)] : [null, 1_000] };
        expect(await seen()).toEqual(expected);
        expect(await seen()).toEqual(expected);
      }
      // A restarted agent: no heartbeat until its next; then seq from 0 again.
      await other.register(registration('n1'), 5_000);
      expect((await seen()).n1).toEqual([null, 5_000]);
      await registry.heartbeat(heartbeat('n1', 0), 5_001);
      expect((await seen()).n1).toEqual([0, 5_001]);
      await other.deregister('n2');
      expect(Object.keys(await seen()).sort()).toEqual(['constructor', 'n1']);
    });
  });
}
