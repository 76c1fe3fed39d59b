import { randomBytes } from 'node:crypto';
import type { AllocateRequest, AllocateResponse } from '../../shared/schemas/index.ts';
import type { Context } from '../context.ts';
import type { ProbeReport } from '../probe.ts';
import { DASH, ms, table } from '../render.ts';
import { measure, renderProbe } from './probe.ts';

export interface AllocateCommandOptions {
  room: string;
  participant?: string;
  latency?: Record<string, number>;
  excludeNode?: string[];
  samples: number;
  timeout: number;
  progress: boolean;
  json?: boolean;
}

/** Latencies to send from a probe report: each answering region's median, to 0.1 ms. */
export function latenciesFromProbe(report: ProbeReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of report.regions) if (r.medianMs !== null) out[r.region] = Math.round(r.medianMs * 10) / 10;
  return out;
}

export async function allocateCommand(ctx: Context, opts: AllocateCommandOptions): Promise<void> {
  let probe: ProbeReport | null = null;
  let latencies = opts.latency;
  if (latencies === undefined) {
    probe = (await measure(ctx, opts)).report;
    latencies = latenciesFromProbe(probe);
    if (Object.keys(latencies).length === 0) ctx.warn('no region answered a probe: the router will estimate RTTs (geoip or its default)');
  }
  const request: AllocateRequest = {
    roomId: opts.room,
    participantId: opts.participant ?? `cli-${randomBytes(4).toString('hex')}`,
    ...(Object.keys(latencies).length > 0 ? { latencies } : {}),
    ...(opts.excludeNode && opts.excludeNode.length > 0 ? { excludeNodeIds: opts.excludeNode } : {}),
  };
  const response = await (await ctx.client()).allocate(request);
  if (opts.json) {
    ctx.out(JSON.stringify({ router: ctx.routerUrl, request, response, probe }, null, 2));
    return;
  }
  const parts: string[] = [];
  if (probe) parts.push(renderProbe(probe), '');
  parts.push(renderDecision(request, response));
  ctx.out(parts.join('\n'));
}

export function renderDecision(request: AllocateRequest, res: AllocateResponse): string {
  const sent = request.latencies
    ? Object.entries(request.latencies)
        .map(([r, v]) => `${r} ${v}`)
        .join(', ')
    : 'none (router estimates)';
  const candidates = (selected: string | null) =>
    table(
      ['region', 'client RTT ms', 'score ms', 'node', 'excluded because'],
      res.candidates.map((c) => [c.region === selected ? `${c.region} *` : c.region, ms(c.clientRttMs), ms(c.score), c.nodeId ?? DASH, c.excludedBecause ?? '']),
      ['left', 'right', 'right', 'left', 'left'],
    );
  if (res.mode === 'p2p') {
    return [
      `No region can take room ${res.roomId} now: ${res.participantId} goes P2P (allocation ${res.allocationId})`,
      `  mesh           at most ${res.maxParticipants} participants, signaling relayed by the router (${res.relay.path})`,
      `  RTT source     ${res.rttSource} (sent, ms: ${sent})`,
      `  relay token    ${res.relay.token.length} chars, expires ${res.expiresAt} (--json prints it)`,
      '',
      'Candidates',
      candidates(null),
    ].join('\n');
  }
  const lines = [
    `Placed ${res.participantId} in room ${res.roomId} (allocation ${res.allocationId})`,
    `  home region    ${res.homeRegion}`,
    `  edge region    ${res.region}`,
    `  node           ${res.node.id} ${res.node.signalingUrl}`,
    `  cascade        ${res.cascade.regions.join(' ↔ ') || DASH}`,
    `  RTT source     ${res.rttSource} (sent, ms: ${sent})`,
    `  token          ${res.token.length} chars, expires ${res.expiresAt} (--json prints it)`,
    '',
    'Reasons',
    ...res.reasons.map((r) => `  ${r.code.padEnd(30)} ${r.message}`),
    '',
    'Candidates (score = mean one-way delay to the room, ms; lower is better)',
    candidates(res.region),
  ];
  return lines.join('\n');
}
