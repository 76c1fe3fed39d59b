import { h, ms, pct } from '../dom.ts';
import type { DashboardSnapshot } from '../types.ts';

type Alerts = NonNullable<DashboardSnapshot['alerts']>;
type Scaling = NonNullable<DashboardSnapshot['scaling']>;

export function alertsPanel(alerts: Alerts, now: number): HTMLElement {
  if (alerts.length === 0) return h('p', { class: 'empty muted', 'data-alerts': 0 }, 'No active quality alerts.');
  return h(
    'table',
    { class: 'alerts', 'data-alerts': alerts.length },
    h('thead', null, h('tr', null, ['kind', 'region / node', 'room / participant or link', 'value', 'since'].map((c) => h('th', null, c)))),
    h(
      'tbody',
      null,
      alerts.map((a) =>
        h(
          'tr',
          null,
          h('td', null, h('span', { class: 'pill bad' }, a.kind === 'rtt' ? 'RTT' : a.kind === 'jitter' ? 'jitter' : 'packet loss')),
          h('td', { class: 'mono' }, `${a.region} / ${a.nodeId}`),
          h('td', { class: 'mono' }, a.scope === 'cascade_link' ? `cascade link from ${a.peerRegion} / ${a.peerNodeId}` : `${a.roomId} / ${a.participantId}`),
          h('td', null, a.kind === 'packet_loss' ? `${pct(a.value, 1)} > ${pct(a.threshold, 1)}` : `${ms(a.value)} > ${ms(a.threshold)}`),
          h('td', { class: 'muted' }, ago(now - Date.parse(a.since))),
        ),
      ),
    ),
  );
}

export function scalingPanel(scaling: Scaling, now: number): HTMLElement {
  const decisions = [...scaling.decisions].reverse().slice(0, 8);
  return h(
    'div',
    null,
    h(
      'table',
      { class: 'scaling' },
      h('thead', null, h('tr', null, ['region', 'nodes', 'mean stress', 'client RTT (median)', 'overflows', 'state'].map((c) => h('th', null, c)))),
      h(
        'tbody',
        null,
        scaling.regions.map((r) =>
          h(
            'tr',
            { 'data-scaling-region': r.region },
            h('td', null, r.region),
            h('td', { class: 'num' }, r.nodes),
            h('td', { class: 'num' }, r.meanStress === null ? '—' : pct(r.meanStress)),
            h(
              'td',
              { class: 'num', 'data-client-rtt': r.medianClientRttMs ?? '', title: 'median RTT to this region reported by the clients placed here within the scaling window' },
              ms(r.medianClientRttMs),
              r.medianClientRttMs === null && h('span', { class: 'muted small' }, ` (${r.clientRttSamples}/${r.clientRttMinSamples} clients)`),
            ),
            h('td', { class: 'num' }, r.overflowsInWindow),
            h('td', { class: 'muted small' }, regionState(r)),
          ),
        ),
      ),
    ),
    h(
      'p',
      { class: 'muted small', 'data-client-rtt-note': '' },
      'client RTT (median): the RTT to the region that clients reported when they were placed there within the scaling window (GEO_SFU_SCALING_WINDOW_MS); it shows "—" until enough clients were placed there (counted as found/needed).',
    ),
    h('h3', { class: 'sub' }, 'Recent decisions'),
    decisions.length === 0
      ? h('p', { class: 'empty muted', 'data-decisions': 0 }, 'No scaling decision yet.')
      : h(
          'ul',
          { class: 'decisions', 'data-decisions': decisions.length },
          decisions.map((d) =>
            h('li', null, h('span', { class: `pill ${d.action === 'scale_in' ? 'ok' : 'warn'}` }, d.action.replace('_', ' ')), ' ', h('b', null, d.region), ` ${d.reason} `, h('span', { class: 'muted' }, ago(now - Date.parse(d.at)))),
          ),
        ),
  );
}

function regionState(r: Scaling['regions'][number]): string {
  const parts = [];
  if (r.highForMs > 0) parts.push(`high for ${seconds(r.highForMs)}`);
  if (r.lowForMs > 0) parts.push(`low for ${seconds(r.lowForMs)}`);
  if (r.farForMs > 0) parts.push(`clients far for ${seconds(r.farForMs)}`);
  if (r.coolingDownForMs > 0) parts.push(`cooling down ${seconds(r.coolingDownForMs)}`);
  return parts.join(' · ') || 'steady';
}

function seconds(msValue: number): string {
  return msValue < 60_000 ? `${Math.round(msValue / 1000)} s` : `${Math.round(msValue / 60_000)} min`;
}

function ago(msValue: number): string {
  return `${seconds(Math.max(0, msValue))} ago`;
}
