import {
  AUDIO_KBPS,
  CONSUMERS_PER_WORKER,
  INSTANCES,
  MAX_PARTICIPANTS_PER_NODE,
  MEMORY_BASE_PER_NODE_MB,
  MEMORY_PER_PARTICIPANT_MB,
  SIMULCAST_LAYERS,
  planCapacity,
  validateInput,
  type CapacityInput,
  type CapacityPlan,
} from '../capacity.ts';
import type { Context } from '../context.ts';
import { UsageError } from '../errors.ts';
import { DASH, rate, table, usd } from '../render.ts';

/** Which flag sets each input (for messages naming the flag). */
export const FLAG_OF: Record<keyof CapacityInput, string> = {
  participants: '--participants',
  rooms: '--rooms',
  bitrateKbps: '--bitrate-kbps',
  simulcast: '--simulcast',
  receiveLayer: '--receive-layer',
  audio: '--audio',
  regions: '--regions',
  targetUtilisation: '--target-utilisation',
  instance: '--instance',
  hoursPerMonth: '--hours-per-month',
};

export function capacityCommand(ctx: Context, input: CapacityInput, opts: { json?: boolean }): void {
  const problem = validateInput(input)[0];
  if (problem) throw new UsageError(FLAG_OF[problem.field], problem.message);
  const plan = planCapacity(input);
  ctx.out(opts.json ? JSON.stringify(plan, null, 2) : renderPlan(plan));
}

export function renderPlan(plan: CapacityPlan): string {
  const i = plan.input;
  const inst = INSTANCES[i.instance];
  const video = i.simulcast
    ? `${i.bitrateKbps} kbit/s top layer, simulcast ${SIMULCAST_LAYERS.map((l) => l.fraction).join('+')} (receivers get "${i.receiveLayer}")`
    : `${i.bitrateKbps} kbit/s video`;
  const head = [
    `Capacity plan: ${i.rooms} room(s) × ${i.participants} participants = ${plan.totals.participants} participants; ${video}${i.audio ? ` + ${AUDIO_KBPS} kbit/s audio` : ''}; ${i.regions} region(s)`,
    `Architecture: ${plan.architecture.name} (total participants in ${plan.architecture.range})`,
    '',
  ];
  const r = plan.perRoom;
  const g = plan.perRegion;
  const t = plan.totals;
  const rows = [
    ['participants', i.participants, g.participants, t.participants],
    ['consumers', r.consumers, g.consumers, t.consumers],
    ['SFU ingress', rate(r.ingressKbps), rate(g.ingressKbps), rate(t.ingressKbps)],
    ['SFU egress', rate(r.egressKbps), rate(g.egressKbps), rate(t.egressKbps)],
    ['  of which cascade', rate(r.cascadeKbps), DASH, rate(r.cascadeKbps * i.rooms)],
    ['workers (cores)', DASH, g.workers, t.workers],
    [`nodes (${i.instance})`, DASH, `${g.nodes} (bound by ${g.nodesBoundBy})`, t.nodes],
  ];
  const cost = table(
    ['item', 'quantity', 'unit', 'monthly'],
    [...plan.cost.items.map((c) => [c.item, c.quantity, usd(c.unitUsd), usd(c.monthlyUsd)]), ['total', '', '', usd(plan.cost.monthlyUsd)]],
    ['left', 'right', 'right', 'right'],
  );
  return [
    ...head,
    table(['', 'per room', 'per region', 'total'], rows, ['left', 'right', 'right', 'right']),
    `Per node: ~${plan.perNode.participants} participants, ${plan.perNode.workers} worker(s), ${rate(plan.perNode.egressKbps)} egress, ~${plan.perNode.memoryMb} MB memory (${inst.vcpus} vCPU, ${inst.memoryMb / 1024} GiB).`,
    `P2P mesh instead: each client would upload ${rate(plan.meshUplinkPerClientKbps)}.`,
    '',
    'Estimated monthly cost (prices from the scaling guide\'s cost breakdown; see cli/capacity.ts)',
    cost,
    ...(plan.notes.length > 0 ? ['', 'Notes', ...plan.notes.map((n) => `  - ${n}`)] : []),
    '',
    'Model: per room of N publishing bitrate b, an SFU receives N·b and sends N·(N−1)·b (not the guide\'s N·b·2);',
    `  consumers N·(N−1) per stream kind; ${CONSUMERS_PER_WORKER} consumers per worker at ${Math.round(i.targetUtilisation * 100)}% target;`,
    `  ≤ ${MAX_PARTICIPANTS_PER_NODE} participants per node; memory ${MEMORY_BASE_PER_NODE_MB} MB + ${MEMORY_PER_PARTICIPANT_MB} MB per participant.`,
  ].join('\n');
}
