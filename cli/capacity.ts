/**
 * Capacity planning arithmetic for `geo-sfu capacity`: pure functions, no I/O.
 *
 * It starts from the scaling guide this project grew from (its tables, thresholds and prices) and
 * corrects its arithmetic.
 * The guide gives an SFU's bandwidth as `participants × bitrate × 2` ("In + Out"), which is right
 * for ingress but wrong for egress. An SFU forwards every publisher's stream to every other
 * participant. So for a room of N people, each publishing one stream of bitrate b:
 *
 *   ingress = N · b           (each publisher sends its stream once)
 *   egress  = N · (N − 1) · b (each receiver gets the N − 1 other streams)
 *
 * Model (every constant below is documented where it is defined):
 * - Simulcast: a publisher sends every layer of SIMULCAST_LAYERS, so ingress per publisher is the
 *   sum of the layers (1.0 + 0.3 + 0.1 = 1.4 × b). Each receiver gets one layer (its chosen
 *   layer, `receiveLayer`, the top one by default, which is the planning worst case), so egress is
 *   N · (N − 1) · b · fraction(receiveLayer).
 * - Audio (optional): one more Opus stream per publisher at AUDIO_KBPS, forwarded like video. It
 *   doubles the consumer count and adds N·a in and N·(N−1)·a out.
 * - Regions: each room's participants are spread evenly over k = min(K, N) regions, linked as a
 *   full mesh of pipe transports (this project's cascade). Each region receives every publisher's
 *   stream once: its own publishers from clients, the others over the cascade. Each region sends
 *   its publishers' streams to the k − 1 other regions (all simulcast layers are piped). Per room:
 *     ingress   = k · N · pub
 *     egress    = N · (N − 1) · recv + N · (k − 1) · pub
 *     consumers = [N · (N − 1) + N · (k − 1)] · streams
 *   where pub = ingress per publisher stream set, recv = the bitrate a receiver gets, and
 *   streams = 1 (video) or 2 (video + audio). With K = 1 this is the plain formula above. Rooms
 *   rotate over regions, so the load per region is the total divided by K.
 * - CPU: mediasoup runs one worker per core. A worker forwards about CONSUMERS_PER_WORKER consumers
 *   at full load; we plan for `targetUtilisation` of that (default: the guide's 70% CPU scale-up
 *   threshold, GEO_SFU_MAX_CPU). Workers per node = the instance's vCPUs.
 * - Memory: the guide's model, MEMORY_BASE_PER_NODE_MB for the OS and the process plus
 *   MEMORY_PER_PARTICIPANT_MB per participant, kept under the guide's 80% (GEO_SFU_MAX_MEMORY).
 * - Nodes per region: the most of three limits: participants per node (the guide's 100,
 *   GEO_SFU_MAX_PARTICIPANTS_PER_NODE), workers per node, memory per node.
 * - Cost: the price table below, taken from the guide's cost breakdown.
 */
import { CONFIG_SPEC } from '../shared/config/spec.ts';

/** kbit/s of each simulcast layer as a fraction of the top layer's bitrate b (e.g. 720p / 360p / 180p). */
export const SIMULCAST_LAYERS = [
  { name: 'high', fraction: 1.0 },
  { name: 'medium', fraction: 0.3 },
  { name: 'low', fraction: 0.1 },
] as const;
export type LayerName = (typeof SIMULCAST_LAYERS)[number]['name'];
export const LAYER_NAMES: readonly LayerName[] = SIMULCAST_LAYERS.map((l) => l.name);

/** Opus audio stream per publisher, kbit/s (a typical voice bitrate), when audio is planned for. */
export const AUDIO_KBPS = 32;

/**
 * Consumers one mediasoup worker (one CPU core) forwards at full load: the agents' own setting
 * (GEO_SFU_CONSUMERS_PER_WORKER), whose default the SFU benchmark backs.
 */
export const CONSUMERS_PER_WORKER = CONFIG_SPEC.consumersPerWorker.default;

/** Plan CPU for this fraction of a worker's capacity: the guide scales out at 70% CPU (GEO_SFU_MAX_CPU). */
export const DEFAULT_TARGET_UTILISATION = CONFIG_SPEC.maxCpu.default;

/** Participants per SFU node: the guide's 100 (GEO_SFU_MAX_PARTICIPANTS_PER_NODE). */
export const MAX_PARTICIPANTS_PER_NODE = CONFIG_SPEC.maxParticipantsPerNode.default;

/** The guide's memory model: 10 MB of stream buffers and 1 MB of metadata per participant. */
export const MEMORY_PER_PARTICIPANT_MB = 11;
/** The guide's memory model: 2 GB for the OS and the application per node. */
export const MEMORY_BASE_PER_NODE_MB = 2048;
/** Memory fraction a node may use: the guide's 80% (GEO_SFU_MAX_MEMORY). */
export const MAX_MEMORY_FRACTION = CONFIG_SPEC.maxMemory.default;

/** Hours a month the planned load runs: 8 hours × 22 working days. Bandwidth is billed per GB. */
export const DEFAULT_HOURS_PER_MONTH = 176;

export interface Instance {
  vcpus: number;
  memoryMb: number;
  monthlyUsd: number;
  source: string;
}

/**
 * SFU node types and monthly prices, from the scaling guide's cost breakdown (its figures, not
 * live cloud prices). vCPU and memory are the AWS instance sizes.
 */
export const INSTANCES = {
  'c5.2xlarge': { vcpus: 8, memoryMb: 16 * 1024, monthlyUsd: 120, source: 'guide, small scale: "SFU Server: AWS c5.2xlarge ($120)"' },
  'c5.4xlarge': { vcpus: 16, memoryMb: 32 * 1024, monthlyUsd: 240, source: 'guide, medium scale: "SFU Cluster: 3x AWS c5.4xlarge ($720)"' },
  'c5.9xlarge': { vcpus: 36, memoryMb: 72 * 1024, monthlyUsd: 360, source: 'guide, large scale: "SFU Clusters: 15x AWS c5.9xlarge ($5,400)"' },
} as const satisfies Record<string, Instance>;
export type InstanceName = keyof typeof INSTANCES;
export const INSTANCE_NAMES = Object.keys(INSTANCES) as InstanceName[];
export const DEFAULT_INSTANCE: InstanceName = 'c5.2xlarge';

/**
 * Other prices, from the guide's small-scale cost breakdown. Bandwidth: "500GB ($45)" means $0.09
 * per GB. Only SFU egress is billed (ingress is free on the usual clouds); cascade traffic between
 * regions is billed like internet egress, which overstates it a little.
 */
export const PRICES = {
  bandwidthUsdPerGb: 0.09,
  /** Per region: a signaling server and a TURN server. */
  perRegion: [
    { item: 'signaling server (t3.medium)', monthlyUsd: 30 },
    { item: 'TURN server (t3.small)', monthlyUsd: 15 },
  ],
  /** Once: the session database. */
  global: [{ item: 'database (RDS t3.micro)', monthlyUsd: 20 }],
} as const;

/**
 * The guide's architecture table, made contiguous with half-open ranges over the total number of
 * participants (the guide leaves gaps: 2–8, 10–50, ...).
 */
export const ARCHITECTURES = [
  { name: 'P2P mesh', from: 2, to: 9 },
  { name: 'single SFU', from: 9, to: 50 },
  { name: 'SFU multi', from: 50, to: 200 },
  { name: 'SFU cluster', from: 200, to: 1000 },
  { name: 'global', from: 1000, to: Infinity },
] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export function architectureFor(totalParticipants: number): Architecture {
  const found = ARCHITECTURES.find((a) => totalParticipants >= a.from && totalParticipants < a.to);
  if (!found) throw new RangeError(`no architecture for ${totalParticipants} participants (at least 2)`);
  return found;
}

export const rangeLabel = (a: Architecture): string => `[${a.from}, ${a.to === Infinity ? '∞' : a.to})`;

export interface CapacityInput {
  /** Participants per room, N ≥ 2. */
  participants: number;
  /** Rooms of that size, R ≥ 1. */
  rooms: number;
  /** Video bitrate b of one stream (the top layer with simulcast), kbit/s, > 0. */
  bitrateKbps: number;
  simulcast: boolean;
  /** The layer each receiver gets with simulcast (ignored without). */
  receiveLayer: LayerName;
  /** Adds an AUDIO_KBPS Opus stream per publisher. */
  audio: boolean;
  /** Regions K ≥ 1. */
  regions: number;
  /** Fraction of a worker's capacity to plan for, 0 < u ≤ 1. */
  targetUtilisation: number;
  instance: InstanceName;
  hoursPerMonth: number;
}

export const DEFAULT_INPUT: Omit<CapacityInput, 'participants'> = {
  rooms: 1,
  bitrateKbps: 1500,
  simulcast: false,
  receiveLayer: 'high',
  audio: false,
  regions: 1,
  targetUtilisation: DEFAULT_TARGET_UTILISATION,
  instance: DEFAULT_INSTANCE,
  hoursPerMonth: DEFAULT_HOURS_PER_MONTH,
};

/** A problem with an input, naming the field (the CLI maps fields to flags). */
export interface InputProblem {
  field: keyof CapacityInput;
  message: string;
}

const isInt = (x: number) => Number.isInteger(x);

/** Every problem with an input; empty when it can be planned. */
export function validateInput(input: CapacityInput): InputProblem[] {
  const problems: InputProblem[] = [];
  const p = (field: keyof CapacityInput, message: string) => problems.push({ field, message });
  if (!isInt(input.participants) || input.participants < 2) p('participants', `must be a whole number ≥ 2 (got ${input.participants})`);
  if (!isInt(input.rooms) || input.rooms < 1) p('rooms', `must be a whole number ≥ 1 (got ${input.rooms})`);
  if (!Number.isFinite(input.bitrateKbps) || input.bitrateKbps <= 0) p('bitrateKbps', `must be a number > 0 (got ${input.bitrateKbps})`);
  if (!isInt(input.regions) || input.regions < 1) p('regions', `must be a whole number ≥ 1 (got ${input.regions})`);
  if (!(input.targetUtilisation > 0 && input.targetUtilisation <= 1)) p('targetUtilisation', `must be in (0, 1] (got ${input.targetUtilisation})`);
  if (!(input.hoursPerMonth > 0 && input.hoursPerMonth <= 744)) p('hoursPerMonth', `must be in (0, 744] (got ${input.hoursPerMonth})`);
  if (!LAYER_NAMES.includes(input.receiveLayer)) p('receiveLayer', `must be one of ${LAYER_NAMES.join(', ')} (got ${input.receiveLayer})`);
  if (!(input.instance in INSTANCES)) p('instance', `must be one of ${INSTANCE_NAMES.join(', ')} (got ${input.instance})`);
  return problems;
}

/** Rounds away binary noise (0.1 × 333 = 33.300000000000004) without hiding real fractions. */
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** Bitrates of one publisher: what it sends (all its layers) and what one receiver gets from it, kbit/s. */
export function streamBitrates(input: Pick<CapacityInput, 'bitrateKbps' | 'simulcast' | 'receiveLayer' | 'audio'>): {
  publishKbps: number;
  receiveKbps: number;
  streams: number;
} {
  const b = input.bitrateKbps;
  const video = input.simulcast
    ? {
        publish: SIMULCAST_LAYERS.reduce((sum, l) => sum + l.fraction * b, 0),
        receive: SIMULCAST_LAYERS.find((l) => l.name === input.receiveLayer)!.fraction * b,
      }
    : { publish: b, receive: b };
  const audio = input.audio ? AUDIO_KBPS : 0;
  return { publishKbps: round6(video.publish + audio), receiveKbps: round6(video.receive + audio), streams: input.audio ? 2 : 1 };
}

export interface RoomLoad {
  /** Regions the room spans, k = min(K, N). */
  regionsSpanned: number;
  ingressKbps: number;
  egressKbps: number;
  /** Of which between regions (cascade), counted in egress (and again in the receiving region's ingress). */
  cascadeKbps: number;
  consumers: number;
}

/** One room's SFU load, summed over the regions it spans (see the model at the top). */
export function roomLoad(input: Pick<CapacityInput, 'participants' | 'bitrateKbps' | 'simulcast' | 'receiveLayer' | 'audio' | 'regions'>): RoomLoad {
  const n = input.participants;
  const k = Math.min(input.regions, n);
  const { publishKbps, receiveKbps, streams } = streamBitrates(input);
  const cascadeKbps = n * (k - 1) * publishKbps;
  return {
    regionsSpanned: k,
    ingressKbps: round6(k * n * publishKbps),
    egressKbps: round6(n * (n - 1) * receiveKbps + cascadeKbps),
    cascadeKbps: round6(cascadeKbps),
    consumers: (n * (n - 1) + n * (k - 1)) * streams,
  };
}

/** Workers needed for a number of consumers at a target utilisation. */
export function workersFor(consumers: number, targetUtilisation: number): number {
  return Math.ceil(consumers / (CONSUMERS_PER_WORKER * targetUtilisation));
}

/** Memory one node needs for its participants, MB (the guide's model). */
export function nodeMemoryMb(participantsOnNode: number): number {
  return MEMORY_BASE_PER_NODE_MB + MEMORY_PER_PARTICIPANT_MB * participantsOnNode;
}

/** Participants one node can hold within its memory budget. */
export function participantsByMemory(instance: Instance): number {
  return Math.floor((instance.memoryMb * MAX_MEMORY_FRACTION - MEMORY_BASE_PER_NODE_MB) / MEMORY_PER_PARTICIPANT_MB);
}

/** GB (10^9 bytes) sent in a month at a steady kbit/s. */
export function monthlyGb(kbps: number, hoursPerMonth: number): number {
  return (kbps * 1000 * 3600 * hoursPerMonth) / 8 / 1e9;
}

export interface CostItem {
  item: string;
  quantity: number;
  unitUsd: number;
  monthlyUsd: number;
}

export interface CapacityPlan {
  input: CapacityInput;
  architecture: { name: string; range: string };
  perRoom: RoomLoad;
  totals: {
    participants: number;
    consumers: number;
    ingressKbps: number;
    egressKbps: number;
    workers: number;
    nodes: number;
  };
  perRegion: {
    participants: number;
    consumers: number;
    ingressKbps: number;
    egressKbps: number;
    workers: number;
    nodes: number;
    /** Which limit decided the node count. */
    nodesBoundBy: 'participants' | 'workers' | 'memory';
  };
  perNode: {
    participants: number;
    memoryMb: number;
    egressKbps: number;
    workers: number;
  };
  /** Without an SFU (P2P mesh), each client uploads its stream to the N − 1 others. */
  meshUplinkPerClientKbps: number;
  cost: { items: CostItem[]; monthlyUsd: number; egressGbPerMonth: number };
  notes: string[];
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** The whole plan. Throws RangeError on an invalid input (call validateInput first for messages). */
export function planCapacity(input: CapacityInput): CapacityPlan {
  const problems = validateInput(input);
  if (problems.length > 0) throw new RangeError(problems.map((p) => `${p.field} ${p.message}`).join('; '));
  const instance: Instance = INSTANCES[input.instance];
  const room = roomLoad(input);
  const K = input.regions;
  const R = input.rooms;
  const totalParticipants = input.participants * R;
  const totalConsumers = room.consumers * R;
  const totalIngress = room.ingressKbps * R;
  const totalEgress = room.egressKbps * R;

  const regionParticipants = Math.ceil(totalParticipants / K);
  const regionConsumers = Math.ceil(totalConsumers / K);
  const regionWorkers = workersFor(regionConsumers, input.targetUtilisation);
  const limits = {
    participants: Math.ceil(regionParticipants / MAX_PARTICIPANTS_PER_NODE),
    workers: Math.ceil(regionWorkers / instance.vcpus),
    memory: Math.ceil(regionParticipants / participantsByMemory(instance)),
  };
  const nodesBoundBy = (Object.keys(limits) as Array<keyof typeof limits>).reduce((a, b) => (limits[b] > limits[a] ? b : a));
  const regionNodes = limits[nodesBoundBy];
  const perNodeParticipants = Math.ceil(regionParticipants / regionNodes);

  const egressGb = monthlyGb(totalEgress, input.hoursPerMonth);
  const items: CostItem[] = [
    { item: `SFU node (${input.instance})`, quantity: regionNodes * K, unitUsd: instance.monthlyUsd, monthlyUsd: regionNodes * K * instance.monthlyUsd },
    { item: `SFU egress, GB (${input.hoursPerMonth} h/month)`, quantity: round2(egressGb), unitUsd: PRICES.bandwidthUsdPerGb, monthlyUsd: round2(egressGb * PRICES.bandwidthUsdPerGb) },
    ...PRICES.perRegion.map((p) => ({ item: p.item, quantity: K, unitUsd: p.monthlyUsd, monthlyUsd: K * p.monthlyUsd })),
    ...PRICES.global.map((p) => ({ item: p.item, quantity: 1, unitUsd: p.monthlyUsd, monthlyUsd: p.monthlyUsd })),
  ];
  const architecture = architectureFor(totalParticipants);

  const notes: string[] = [];
  const workerBudget = CONSUMERS_PER_WORKER * input.targetUtilisation;
  if (room.consumers / room.regionsSpanned > workerBudget) {
    notes.push(`one room needs more than one worker per region (${Math.ceil(room.consumers / room.regionsSpanned)} consumers > ${workerBudget}): pipe its producers across workers (pipeToRouter)`);
  }
  if (input.regions > input.participants) notes.push(`a room of ${input.participants} spans at most ${input.participants} of the ${input.regions} regions`);
  if (architecture.name === 'P2P mesh') notes.push(`P2P mesh needs no SFU: each client uploads ${round2(streamBitrates(input).publishKbps * (input.participants - 1))} kbit/s; SFU figures shown for comparison`);

  return {
    input,
    architecture: { name: architecture.name, range: rangeLabel(architecture) },
    perRoom: room,
    totals: {
      participants: totalParticipants,
      consumers: totalConsumers,
      ingressKbps: round2(totalIngress),
      egressKbps: round2(totalEgress),
      workers: regionWorkers * K,
      nodes: regionNodes * K,
    },
    perRegion: {
      participants: regionParticipants,
      consumers: regionConsumers,
      ingressKbps: round2(totalIngress / K),
      egressKbps: round2(totalEgress / K),
      workers: regionWorkers,
      nodes: regionNodes,
      nodesBoundBy,
    },
    perNode: {
      participants: perNodeParticipants,
      memoryMb: nodeMemoryMb(perNodeParticipants),
      egressKbps: round2(totalEgress / K / regionNodes),
      workers: Math.min(instance.vcpus, regionWorkers),
    },
    meshUplinkPerClientKbps: round2(streamBitrates(input).publishKbps * (input.participants - 1)),
    cost: { items, monthlyUsd: round2(items.reduce((s, i) => s + i.monthlyUsd, 0)), egressGbPerMonth: round2(egressGb) },
    notes,
  };
}
