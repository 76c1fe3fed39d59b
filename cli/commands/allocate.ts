import { randomBytes } from 'node:crypto';
import type { AllocatePreview, AllocateRequest, AllocateResponse, Candidate, Reason } from '../../shared/schemas/index.ts';
import type { Context } from '../context.ts';
import type { ProbeReport } from '../probe.ts';
import { DASH, ms, table } from '../render.ts';
import { measure, renderProbe } from './probe.ts';

export interface AllocateCommandOptions {
  room: string;
  participant?: string;
  latency?: Record<string, number>;
  excludeNode?: string[];
  /** Ask where the router would place the participant, without allocating (POST /allocate/dry-run). */
  dryRun?: boolean;
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
  if (opts.dryRun) {
    const preview = await (await ctx.client()).allocateDryRun(request);
    if (opts.json) {
      ctx.out(JSON.stringify({ router: ctx.routerUrl, request, preview, probe }, null, 2));
      return;
    }
    ctx.out([...(probe ? [renderProbe(probe), ''] : []), renderPreview(request, preview)].join('\n'));
    return;
  }
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

const sentLatencies = (request: AllocateRequest) =>
  request.latencies
    ? Object.entries(request.latencies)
        .map(([r, v]) => `${r} ${v}`)
        .join(', ')
    : 'none (router estimates)';

const candidatesTable = (candidates: Candidate[], selected: string | null) =>
  table(
    ['region', 'client RTT ms', 'score ms', 'node', 'excluded because'],
    candidates.map((c) => [c.region === selected ? `${c.region} *` : c.region, ms(c.clientRttMs), ms(c.score), c.nodeId ?? DASH, c.excludedBecause ?? '']),
    ['left', 'right', 'right', 'left', 'left'],
  );

const reasonLines = (reasons: Reason[]) => reasons.map((r) => `  ${r.code.padEnd(30)} ${r.message}`);

/** `--dry-run`: the decision the router would make now; it reserved nothing. */
export function renderPreview(request: AllocateRequest, p: AllocatePreview): string {
  const room = p.room.exists ? `room ${p.roomId} exists (home ${p.room.homeRegion}, ${p.room.participants} participant(s))` : `room ${p.roomId} does not exist yet`;
  if (p.mode !== 'sfu') {
    return [
      `Dry run: no region can take ${p.participantId} in room ${p.roomId} now; POST /allocate would ${p.mode === 'p2p' ? 'answer with a P2P mesh' : 'answer 503'}`,
      `  ${room}`,
      `  RTT source     ${p.rttSource} (sent, ms: ${sentLatencies(request)})`,
      '',
      'Candidates',
      candidatesTable(p.candidates, null),
    ].join('\n');
  }
  return [
    `Dry run: ${p.participantId} would be placed in room ${p.roomId} (nothing reserved, nothing pinned)`,
    `  ${room}`,
    `  home region    ${p.homeRegion}`,
    `  edge region    ${p.region}`,
    `  node           ${p.node!.id} ${p.node!.signalingUrl}`,
    `  cascade        ${p.cascade.regions.join(' ↔ ') || DASH}`,
    `  RTT source     ${p.rttSource} (sent, ms: ${sentLatencies(request)})`,
    '',
    'Reasons',
    ...reasonLines(p.reasons),
    '',
    'Candidates (score = mean one-way delay to the room, ms; lower is better)',
    candidatesTable(p.candidates, p.region),
  ].join('\n');
}

export function renderDecision(request: AllocateRequest, res: AllocateResponse): string {
  const sent = sentLatencies(request);
  const candidates = (selected: string | null) => candidatesTable(res.candidates, selected);
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
    ...reasonLines(res.reasons),
    '',
    'Candidates (score = mean one-way delay to the room, ms; lower is better)',
    candidates(res.region),
  ];
  return lines.join('\n');
}
