import { h, ms } from '../dom.ts';
import type { DashboardSnapshot } from '../types.ts';

type Rebalancing = NonNullable<DashboardSnapshot['rebalancing']>;

/** Live rebalancing: the router's last decisions, newest first, with the moves they made. */
export function rebalancingPanel(rebalancing: Rebalancing): HTMLElement {
  if (!rebalancing.enabled) return h('p', { class: 'empty muted', 'data-rebalancing': 'off' }, 'Live rebalancing is off (GEO_SFU_REBALANCE=false).');
  if (rebalancing.decisions.length === 0) return h('p', { class: 'empty muted', 'data-rebalancing': 0 }, 'No rebalancing decision yet.');
  return h(
    'table',
    { class: 'rebalancing', 'data-rebalancing': rebalancing.decisions.length },
    h('thead', null, h('tr', null, ['room', 'outcome', 'mean delay', 'moves', 'at'].map((c) => h('th', null, c)))),
    h(
      'tbody',
      null,
      rebalancing.decisions.map((d) =>
        h(
          'tr',
          { 'data-outcome': d.outcome },
          h('td', { class: 'mono' }, `${d.roomId} (${d.participants})`),
          h('td', null, h('span', { class: `pill ${d.outcome === 'moved' ? 'ok' : d.outcome === 'failed' ? 'bad' : ''}` }, d.outcome.replace('_', ' '))),
          h('td', { class: 'num' }, d.outcome === 'moved' ? `${ms(d.meanDelayBeforeMs, 1)} → ${ms(d.meanDelayAfterMs, 1)}` : ms(d.meanDelayBeforeMs, 1)),
          h(
            'td',
            { class: 'small' },
            d.moves.length === 0 ? '—' : d.moves.map((m) => `${m.participantId} ${m.from}→${m.to}${m.told ? '' : ' (agent not told)'}`).join(', '),
            d.home ? ` · home ${d.home.from}→${d.home.to}` : '',
          ),
          h('td', { class: 'muted small' }, new Date(d.at).toLocaleTimeString()),
        ),
      ),
    ),
  );
}
