import { h, heat } from '../dom.ts';
import type { DashboardSnapshot } from '../types.ts';

const BAD_MS = 250;

/** The inter-region RTT matrix the agents measured, as a heat map (row → column). */
export function matrixPanel(regions: DashboardSnapshot['regions']): HTMLElement {
  const ids = regions.regions.map((r) => r.id);
  const cell = (from: string, to: string) => {
    if (from === to) return h('td', { class: 'self', 'data-from': from, 'data-to': to }, '·');
    const rtt = regions.interRegionRttMs[from]?.[to] ?? null;
    const stats = regions.interRegion[from]?.[to];
    const td = h(
      'td',
      {
        'data-from': from,
        'data-to': to,
        'data-rtt': rtt === null ? '' : rtt.toFixed(1),
        title: stats ? `${from} → ${to}: ${rtt?.toFixed(1)} ms smoothed, median ${stats.medianMs ?? '—'} ms, jitter ${stats.jitterMs.toFixed(1)} ms, loss ${(stats.loss * 100).toFixed(0)}%, ${stats.samples} samples` : `${from} → ${to}: not measured yet`,
      },
      rtt === null ? '…' : Math.round(rtt),
    );
    if (rtt !== null) td.style.background = heat(rtt, BAD_MS);
    else td.classList.add('unknown');
    return td;
  };
  const legend = h('span', { class: 'legend-bar' });
  return h(
    'div',
    { class: 'matrix-wrap' },
    h(
      'table',
      { class: 'matrix' },
      h('thead', null, h('tr', null, h('th', { class: 'corner' }, 'from ↓ to →'), ids.map((id) => h('th', { scope: 'col' }, id)))),
      h('tbody', null, ids.map((from) => h('tr', null, h('th', { scope: 'row' }, from), ids.map((to) => cell(from, to))))),
    ),
    h('div', { class: 'legend muted small' }, '0 ms', legend, `≥ ${BAD_MS} ms · smoothed RTT measured between agents`),
  );
}
