import { G114_ONE_WAY_MS } from './score.ts';
import type { PolicySummary } from './simulate.ts';

const f = (x: number, digits = 1) => x.toFixed(digits);

export function policyTable(policies: readonly PolicySummary[]): string {
  const header = '| policy | mean of room mean delay (ms) | room p95 (ms) | room worst pair (ms) | pairs > 150 ms | regions / room | migrations / participant | gap to optimum (mean of rooms) | gap (aggregate) | rooms at optimum |';
  const rows = policies.map(
    (p) =>
      `| ${p.policy} | ${f(p.meanRoomMeanMs)} | ${f(p.meanRoomP95Ms)} | ${f(p.meanRoomWorstMs)} | ${f(p.pairsOver150Pct)}% | ${f(p.regionsPerRoom, 2)} | ${f(p.migrationsPerParticipant, 2)} | ${p.policy === 'optimum' ? '—' : `+${f(p.gapToOptimumPct)}%`} | ${p.policy === 'optimum' ? '—' : `+${f(p.aggregateGapPct)}%`} | ${f(p.roomsAtOptimumPct, 0)}% |`,
  );
  return [header, `|${'---|'.repeat(10)}`, ...rows].join('\n');
}

const COLOURS = ['#1f77b4', '#d62728', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#111111', '#e377c2'];

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Hand-written SVG: the CDF of pair delays (all pairs of all rooms) per policy, with G.114's 150 ms marked. */
export function cdfSvg(pairDelays: Record<string, number[]>, order: readonly string[], title: string): string {
  const width = 760;
  const height = 460;
  const m = { left: 60, right: 210, top: 40, bottom: 50 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const sorted = Object.fromEntries(order.map((id) => [id, [...(pairDelays[id] ?? [])].sort((a, b) => a - b)]));
  const p999 = Math.max(...order.map((id) => sorted[id]![Math.floor(sorted[id]!.length * 0.999)] ?? 0));
  const xMax = Math.max(200, Math.ceil(p999 / 50) * 50);
  const x = (ms: number) => m.left + (Math.min(ms, xMax) / xMax) * plotW;
  const y = (q: number) => m.top + (1 - q) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.left}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (let ms = 0; ms <= xMax; ms += 50) {
    parts.push(`<line x1="${x(ms)}" y1="${m.top}" x2="${x(ms)}" y2="${m.top + plotH}" stroke="#eee"/>`);
    parts.push(`<text x="${x(ms)}" y="${m.top + plotH + 16}" text-anchor="middle">${ms}</text>`);
  }
  for (let q = 0; q <= 1.0001; q += 0.2) {
    parts.push(`<line x1="${m.left}" y1="${y(q)}" x2="${m.left + plotW}" y2="${y(q)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 6}" y="${y(q) + 4}" text-anchor="end">${q.toFixed(1)}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle">one-way delay between two participants (ms)</text>`);
  parts.push(`<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">share of pairs ≤ x</text>`);
  parts.push(`<line x1="${x(G114_ONE_WAY_MS)}" y1="${m.top}" x2="${x(G114_ONE_WAY_MS)}" y2="${m.top + plotH}" stroke="#c00" stroke-dasharray="5 4"/>`);
  parts.push(`<text x="${x(G114_ONE_WAY_MS) + 4}" y="${m.top + plotH - 8}" fill="#c00">G.114: 150 ms one-way</text>`);
  // Baselines first, then the router and the optimum on top; legend in the given order.
  const onTop = (id: string) => (id === 'optimum' ? 3 : id === 'rebalance' ? 2 : id === 'min-delay' ? 1 : 0);
  const drawOrder = [...order.entries()].sort(([, a], [, b]) => onTop(a) - onTop(b));
  for (const [k, id] of drawOrder) {
    const data = sorted[id]!;
    if (data.length === 0) continue;
    const points: string[] = [];
    let at = 0;
    for (let ms = 0; ms <= xMax; ms += xMax / 400) {
      while (at < data.length && data[at]! <= ms) at++;
      points.push(`${x(ms).toFixed(1)},${y(at / data.length).toFixed(1)}`);
    }
    const colour = COLOURS[k % COLOURS.length]!;
    const dash = id === 'optimum' ? ' stroke-dasharray="6 3"' : '';
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="${id === 'min-delay' || id === 'rebalance' || id === 'optimum' ? 2.5 : 1.5}"${dash} points="${points.join(' ')}"/>`);
    const ly = m.top + 10 + k * 20;
    parts.push(`<line x1="${m.left + plotW + 16}" y1="${ly}" x2="${m.left + plotW + 40}" y2="${ly}" stroke="${colour}" stroke-width="2.5"${dash}/>`);
    parts.push(`<text x="${m.left + plotW + 46}" y="${ly + 4}">${escapeXml(id)}</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
