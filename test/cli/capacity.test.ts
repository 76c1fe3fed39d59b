import { describe, expect, it } from 'vitest';
import {
  ARCHITECTURES,
  CONSUMERS_PER_WORKER,
  DEFAULT_INPUT,
  architectureFor,
  monthlyGb,
  participantsByMemory,
  planCapacity,
  rangeLabel,
  roomLoad,
  streamBitrates,
  validateInput,
  workersFor,
  INSTANCES,
  type CapacityInput,
} from '../../cli/capacity.ts';

/**
 * Capacity arithmetic against cases worked out by hand. Defaults unless stated: 1 room, no
 * simulcast, no audio, 1 region, 70% target utilisation (350 consumers per worker), c5.2xlarge
 * (8 vCPU, 16 GiB, $120), 176 h/month, $0.09/GB egress, $30 signaling + $15 TURN per region,
 * $20 database.
 */
const input = (over: Partial<CapacityInput> & { participants: number }): CapacityInput => ({ ...DEFAULT_INPUT, ...over });

describe('roomLoad: SFU ingress N·b, egress N·(N−1)·b', () => {
  it('10 people at 1000 kbit/s: in 10 Mbit/s, out 90 Mbit/s (the guide would say 2·N·b = 20 in + out)', () => {
    // ingress = 10 × 1000 = 10 000; egress = 10 × 9 × 1000 = 90 000; consumers = 10 × 9 = 90.
    expect(roomLoad(input({ participants: 10, bitrateKbps: 1000 }))).toEqual({
      regionsSpanned: 1,
      ingressKbps: 10_000,
      egressKbps: 90_000,
      cascadeKbps: 0,
      consumers: 90,
    });
  });

  it("the guide's own example, 50 people at 720p (2 Mbit/s): 100 Mbit/s in, 4.9 Gbit/s out, not 200 Mbit/s", () => {
    // Guide: serverBandwidth = 50 × 2 × 2 = 200 Mbit/s. Corrected: in 50 × 2000 = 100 000 kbit/s,
    // out 50 × 49 × 2000 = 4 900 000 kbit/s.
    const room = roomLoad(input({ participants: 50, bitrateKbps: 2000 }));
    expect(room.ingressKbps).toBe(100_000);
    expect(room.egressKbps).toBe(4_900_000);
    expect(room.consumers).toBe(2450);
  });

  it('2 people: each receives the other (in 2·b, out 2·b)', () => {
    // ingress 2 × 800 = 1600; egress 2 × 1 × 800 = 1600; consumers 2.
    expect(roomLoad(input({ participants: 2, bitrateKbps: 800 }))).toMatchObject({ ingressKbps: 1600, egressKbps: 1600, consumers: 2 });
  });

  it('simulcast: ingress is the sum of the layers (1.0 + 0.3 + 0.1 = 1.4·b), egress the receivers\' layer', () => {
    // 4 people, b = 1000. Publish 1000 + 300 + 100 = 1400 each → ingress 4 × 1400 = 5600.
    // Egress 4 × 3 = 12 receiver-streams × layer: high 1000 → 12 000, medium 300 → 3600, low 100 → 1200.
    const base = { participants: 4, bitrateKbps: 1000, simulcast: true } as const;
    expect(streamBitrates(input({ ...base }))).toEqual({ publishKbps: 1400, receiveKbps: 1000, streams: 1 });
    expect(roomLoad(input({ ...base, receiveLayer: 'high' }))).toMatchObject({ ingressKbps: 5600, egressKbps: 12_000, consumers: 12 });
    expect(roomLoad(input({ ...base, receiveLayer: 'medium' }))).toMatchObject({ ingressKbps: 5600, egressKbps: 3600, consumers: 12 });
    expect(roomLoad(input({ ...base, receiveLayer: 'low' }))).toMatchObject({ ingressKbps: 5600, egressKbps: 1200, consumers: 12 });
  });

  it('simulcast layers of an awkward bitrate have no binary noise', () => {
    // 333 × (1 + 0.3 + 0.1) = 333 + 99.9 + 33.3 = 466.2 (0.1 × 333 alone is 33.300000000000004 in floats).
    expect(streamBitrates(input({ participants: 3, bitrateKbps: 333, simulcast: true })).publishKbps).toBe(466.2);
  });

  it('audio adds a 32 kbit/s stream per publisher and doubles the consumers', () => {
    // 5 people, b = 500, audio 32: per stream set 532. ingress 5 × 532 = 2660; egress 5 × 4 × 532 = 10 640;
    // consumers 5 × 4 × 2 = 40.
    expect(roomLoad(input({ participants: 5, bitrateKbps: 500, audio: true }))).toMatchObject({ ingressKbps: 2660, egressKbps: 10_640, consumers: 40 });
  });

  it('a room over 3 regions: every region receives every stream once, cascade sends each publisher to the 2 others', () => {
    // N = 6, K = 3 (k = 3, 2 people per region), b = 500.
    // ingress = k·N·b = 3 × 6 × 500 = 9000 (each region: 2 local + 4 piped = 6 × 500 = 3000).
    // cascade = N·(k−1)·b = 6 × 2 × 500 = 6000; egress = 6 × 5 × 500 + 6000 = 15 000 + 6000 = 21 000.
    // consumers = 6 × 5 + 6 × 2 = 42 (30 for receivers, 12 pipe consumers).
    expect(roomLoad(input({ participants: 6, bitrateKbps: 500, regions: 3 }))).toEqual({
      regionsSpanned: 3,
      ingressKbps: 9000,
      egressKbps: 21_000,
      cascadeKbps: 6000,
      consumers: 42,
    });
  });

  it('a room spans at most N regions', () => {
    // N = 2, K = 4 → k = 2. ingress 2 × 2 × 1000 = 4000; egress 2 × 1 × 1000 + 2 × 1 × 1000 = 4000; consumers 2 + 2 = 4.
    expect(roomLoad(input({ participants: 2, bitrateKbps: 1000, regions: 4 }))).toEqual({
      regionsSpanned: 2,
      ingressKbps: 4000,
      egressKbps: 4000,
      cascadeKbps: 2000,
      consumers: 4,
    });
  });
});

describe('workers, memory, bandwidth volume', () => {
  it('workers = ⌈consumers / (500 × utilisation)⌉', () => {
    expect(CONSUMERS_PER_WORKER).toBe(500);
    expect(workersFor(90, 0.7)).toBe(1); // 90 / 350
    expect(workersFor(350, 0.7)).toBe(1); // exactly one worker's budget
    expect(workersFor(351, 0.7)).toBe(2);
    expect(workersFor(380, 1)).toBe(1); // 380 / 500
    expect(workersFor(380, 0.5)).toBe(2); // 380 / 250
    expect(workersFor(49_000, 0.7)).toBe(140); // 49 000 / 350
  });

  it('a c5.2xlarge holds 1005 participants by memory: ⌊(16384 × 0.8 − 2048) / 11⌋', () => {
    // 16384 × 0.8 = 13 107.2; − 2048 = 11 059.2; / 11 = 1005.38 → 1005.
    expect(participantsByMemory(INSTANCES['c5.2xlarge'])).toBe(1005);
  });

  it('GB a month: 90 Mbit/s for 176 h = 7128 GB', () => {
    // 90e6 bit/s × 176 × 3600 s = 5.7024e13 bit = 7.128e12 B = 7128 GB.
    expect(monthlyGb(90_000, 176)).toBeCloseTo(7128, 9);
    // The guide's 500 GB for $45 is $0.09/GB; 1 Mbit/s for 730 h = 328.5 GB.
    expect(monthlyGb(1000, 730)).toBeCloseTo(328.5, 9);
  });
});

describe('architecture ranges are contiguous and half-open', () => {
  it.each([
    [2, 'P2P mesh'],
    [8, 'P2P mesh'],
    [9, 'single SFU'],
    [49, 'single SFU'],
    [50, 'SFU multi'],
    [199, 'SFU multi'],
    [200, 'SFU cluster'],
    [999, 'SFU cluster'],
    [1000, 'global'],
    [1_000_000, 'global'],
  ])('%i participants → %s', (n, name) => {
    expect(architectureFor(n).name).toBe(name);
  });

  it('each range starts where the previous ends', () => {
    for (let i = 1; i < ARCHITECTURES.length; i++) expect(ARCHITECTURES[i]!.from).toBe(ARCHITECTURES[i - 1]!.to);
    expect(ARCHITECTURES.map(rangeLabel)).toEqual(['[2, 9)', '[9, 50)', '[50, 200)', '[200, 1000)', '[1000, ∞)']);
    expect(() => architectureFor(1)).toThrow(RangeError);
  });
});

describe('planCapacity', () => {
  it('one room of 10 at 1000 kbit/s: 1 node, 1 worker, $826.52 a month', () => {
    // Nodes: participants ⌈10/100⌉ = 1, workers ⌈1/8⌉ = 1, memory ⌈10/1005⌉ = 1 → 1 (first limit wins ties).
    // Memory on the node 2048 + 10 × 11 = 2158 MB. Egress 7128 GB × $0.09 = $641.52.
    // Cost 120 + 641.52 + 30 + 15 + 20 = $826.52.
    const plan = planCapacity(input({ participants: 10, bitrateKbps: 1000 }));
    expect(plan.architecture).toEqual({ name: 'single SFU', range: '[9, 50)' });
    expect(plan.totals).toEqual({ participants: 10, consumers: 90, ingressKbps: 10_000, egressKbps: 90_000, workers: 1, nodes: 1 });
    expect(plan.perRegion).toMatchObject({ participants: 10, workers: 1, nodes: 1, nodesBoundBy: 'participants' });
    expect(plan.perNode).toEqual({ participants: 10, memoryMb: 2158, egressKbps: 90_000, workers: 1 });
    expect(plan.meshUplinkPerClientKbps).toBe(9000); // 9 others × 1000
    expect(plan.cost.egressGbPerMonth).toBe(7128);
    expect(plan.cost.items.map((i) => i.monthlyUsd)).toEqual([120, 641.52, 30, 15, 20]);
    expect(plan.cost.monthlyUsd).toBe(826.52);
  });

  it('20 rooms of 50 at 1500 kbit/s: global, 140 workers on 18 nodes (bound by workers)', () => {
    // Consumers 20 × 50 × 49 = 49 000 → 140 workers → ⌈140/8⌉ = 18 nodes (participants would need ⌈1000/100⌉ = 10).
    // Egress 20 × 50 × 49 × 1500 = 73 500 000 kbit/s = 73.5 Gbit/s; ingress 20 × 50 × 1500 = 1 500 000.
    // Egress volume 73.5e9 / 8 × 633 600 s = 5 821 200 GB → × 0.09 = $523 908.
    // Cost 18 × 120 = 2160 + 523 908 + 65 = $526 133. Per node ⌈1000/18⌉ = 56 participants, 2048 + 616 = 2664 MB.
    const plan = planCapacity(input({ participants: 50, rooms: 20, bitrateKbps: 1500 }));
    expect(plan.architecture.name).toBe('global');
    expect(plan.totals).toEqual({ participants: 1000, consumers: 49_000, ingressKbps: 1_500_000, egressKbps: 73_500_000, workers: 140, nodes: 18 });
    expect(plan.perRegion.nodesBoundBy).toBe('workers');
    expect(plan.perNode).toEqual({ participants: 56, memoryMb: 2664, egressKbps: 4_083_333.33, workers: 8 });
    expect(plan.cost.egressGbPerMonth).toBe(5_821_200);
    expect(plan.cost.monthlyUsd).toBe(526_133);
    // 2450 consumers in one room exceed one worker's 350.
    expect(plan.notes.some((n) => n.includes('pipeToRouter'))).toBe(true);
  });

  it('25 rooms of 10 at 100 kbit/s: 3 nodes, bound by 100 participants per node', () => {
    // 250 participants → SFU cluster; consumers 25 × 90 = 2250 → ⌈2250/350⌉ = 7 workers → 1 node by CPU,
    // but ⌈250/100⌉ = 3 nodes by participants.
    const plan = planCapacity(input({ participants: 10, rooms: 25, bitrateKbps: 100 }));
    expect(plan.architecture.name).toBe('SFU cluster');
    expect(plan.perRegion).toMatchObject({ workers: 7, nodes: 3, nodesBoundBy: 'participants' });
  });

  it('per region is the total over K regions: 6 people over 3 regions', () => {
    // From the roomLoad case: total in 9000, out 21 000, consumers 42 → per region 3000, 7000, 14; 2 participants;
    // 1 worker and 1 node per region, 3 nodes in all. Cost 3 × 120 + per-region 3 × (30 + 15) + 20 = 515 + egress.
    // Egress 21 000 kbit/s × 176 h = 21e6 / 8 × 633 600 / 1e9 = 1663.2 GB → $149.69 (149.688).
    const plan = planCapacity(input({ participants: 6, bitrateKbps: 500, regions: 3 }));
    expect(plan.perRegion).toEqual({ participants: 2, consumers: 14, ingressKbps: 3000, egressKbps: 7000, workers: 1, nodes: 1, nodesBoundBy: 'participants' });
    expect(plan.totals.nodes).toBe(3);
    expect(plan.cost.egressGbPerMonth).toBe(1663.2);
    expect(plan.cost.monthlyUsd).toBe(664.69);
    expect(plan.architecture.name).toBe('P2P mesh');
  });

  it('refuses invalid input, naming the field', () => {
    expect(() => planCapacity(input({ participants: 1 }))).toThrow(/participants/);
    expect(validateInput(input({ participants: 1 })).map((p) => p.field)).toEqual(['participants']);
    expect(validateInput(input({ participants: 2.5 })).map((p) => p.field)).toEqual(['participants']);
    expect(validateInput(input({ participants: 10, bitrateKbps: -5 })).map((p) => p.field)).toEqual(['bitrateKbps']);
    expect(validateInput(input({ participants: 10, bitrateKbps: 0 })).map((p) => p.field)).toEqual(['bitrateKbps']);
    expect(validateInput(input({ participants: 10, bitrateKbps: Number.NaN })).map((p) => p.field)).toEqual(['bitrateKbps']);
    expect(validateInput(input({ participants: 10, rooms: 0, regions: 1.5 })).map((p) => p.field)).toEqual(['rooms', 'regions']);
    expect(validateInput(input({ participants: 10, targetUtilisation: 0 })).map((p) => p.field)).toEqual(['targetUtilisation']);
    expect(validateInput(input({ participants: 10 }))).toEqual([]);
  });
});
