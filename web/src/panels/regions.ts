import { bitrate, h, heat, ms, pct, svg } from '../dom.ts';
import { type NodeMediaView, type NodeView, type RegionView, regionProbeRtt } from '../types.ts';

/**
 * One card per region: health, router probe figures with their sparkline, nodes with load and
 * stress, and (admin view) each node's media bandwidth.
 */
export function regionsPanel(regions: RegionView[], history: ReadonlyMap<string, readonly number[]>, media: ReadonlyMap<string, NodeMediaView> | null): HTMLElement {
  return h('div', { class: 'regions' }, regions.map((r) => regionCard(r, history.get(r.id) ?? [], media)));
}

function regionCard(region: RegionView, samples: readonly number[], media: ReadonlyMap<string, NodeMediaView> | null): HTMLElement {
  const live = region.nodes.filter((n) => n.state !== 'dead');
  const best = live.filter((n) => n.probe.rttMs !== null).sort((a, b) => a.probe.rttMs! - b.probe.rttMs!)[0];
  // Joined + pending, as placement counts them against capacity (NodeOccupancy).
  const participants = region.nodes.reduce((sum, n) => sum + n.occupancy.total, 0);
  const capacity = live.reduce((sum, n) => sum + n.maxParticipants, 0);
  const stress = live.length > 0 ? Math.max(...live.map((n) => n.stress)) : null;
  return h(
    'article',
    { class: `card region ${region.healthy ? 'ok' : 'bad'}`, 'data-region': region.id },
    h(
      'header',
      null,
      h('div', null, h('h3', null, region.displayName), h('div', { class: 'muted mono' }, `${region.id} · ${coord(region.lat, 'N', 'S')} ${coord(region.lon, 'E', 'W')}`)),
      h('span', { class: `badge ${region.healthy ? 'ok' : 'bad'}`, 'data-health': region.healthy ? 'healthy' : 'unavailable' }, region.healthy ? 'healthy' : 'unavailable'),
    ),
    h(
      'div',
      { class: 'probe' },
      h(
        'div',
        null,
        h('div', { class: 'label' }, 'router → region RTT'),
        h('div', { class: 'big', 'data-probe-rtt': regionProbeRtt(region) ?? '' }, ms(regionProbeRtt(region))),
        h('div', { class: 'muted small' }, best ? `jitter ${ms(best.probe.jitterMs, 1)} · loss ${pct(best.probe.loss)}` : 'no probe answer yet'),
      ),
      sparkline(samples),
    ),
    h(
      'dl',
      { class: 'figures' },
      figure('nodes', `${live.length}/${region.nodes.length}`),
      figure('participants', `${participants}/${capacity}`),
      figure('peak stress', stress === null ? '—' : pct(stress)),
    ),
    h('ul', { class: 'nodes' }, region.nodes.length === 0 ? h('li', { class: 'muted' }, 'no node registered') : region.nodes.map((n) => nodeRow(n, media))),
  );
}

function figure(label: string, value: string): HTMLElement[] {
  return [h('dt', null, label), h('dd', null, value)];
}

function nodeRow(node: NodeView, media: ReadonlyMap<string, NodeMediaView> | null): HTMLElement {
  const bandwidth = media?.get(node.nodeId);
  const flags = [node.state, node.draining && 'draining', node.cordoned && 'cordoned'].filter(Boolean).join(' · ');
  const bar = h('span', { class: 'bar-fill' });
  bar.style.width = pct(Math.min(1, node.stress), 1);
  bar.style.background = heat(node.stress, 1);
  return h(
    'li',
    { 'data-node': node.nodeId },
    h('div', { class: 'node-head' }, h('span', { class: 'mono' }, node.nodeId), h('span', { class: `pill ${node.state === 'alive' && !node.draining && !node.cordoned ? 'ok' : 'warn'}` }, flags)),
    h('div', { class: 'bar', title: `stress ${pct(node.stress, 1)}` }, bar),
    h(
      'div',
      { class: 'muted small' },
      `stress ${pct(node.stress)} · cpu ${pct(node.load.cpu)} · mem ${pct(node.load.memory)} · ${node.occupancy.joined} joined + ${node.occupancy.pending} pending / ${node.maxParticipants} · ${node.load.rooms} rooms`,
    ),
    bandwidth &&
      h(
        'div',
        { class: 'muted small', 'data-node-media': node.nodeId, 'data-in-bps': bandwidth.inBps, 'data-out-bps': bandwidth.outBps, title: "media through the node's transports (clients and cascade pipes), last heartbeat" },
        `media in ${bitrate(bandwidth.inBps)} · out ${bitrate(bandwidth.outBps)}`,
      ),
  );
}

function coord(value: number, positive: string, negative: string): string {
  return `${Math.abs(value).toFixed(1)}°${value >= 0 ? positive : negative}`;
}

/**
 * The router→region RTT over the last samples (one a second): drawn left to right until the
 * window is full, on a scale spanning at least 10 ms so that a steady link looks steady; the
 * y axis gives the scale's bounds in ms, the x axis the time window, ending now.
 */
function sparkline(samples: readonly number[]): SVGSVGElement {
  const width = 168;
  const height = 58;
  const plot = { left: 40, right: width - 2, top: 4, bottom: height - 14 };
  const lo = samples.length > 0 ? Math.min(...samples) : 0;
  const hi = samples.length > 0 ? Math.max(...samples) : 0;
  const span = Math.max(10, hi - lo);
  const floor = Math.max(0, (lo + hi) / 2 - span / 2 - span * 0.1);
  const top = floor + span * 1.2;
  const slots = Math.max(MIN_SLOTS, samples.length);
  const step = (plot.right - plot.left) / (slots - 1);
  const yOf = (v: number) => plot.bottom - ((v - floor) / (top - floor)) * (plot.bottom - plot.top);
  const points = samples.map((v, i) => `${(plot.left + i * step).toFixed(1)},${yOf(v).toFixed(1)}`);
  const last = points.at(-1)?.split(',');
  const label = (x: number, y: number, text: string, anchor = 'end') => svg('text', { class: 'axis-label', x, y, 'text-anchor': anchor }, text);
  return svg(
    'svg',
    { class: 'spark', viewBox: `0 0 ${width} ${height}`, width, height, 'data-samples': samples.length, 'data-window-s': slots, role: 'img', 'aria-label': 'router probe RTT history' },
    svg('title', null, samples.length > 0 ? `router probe RTT in ms, one sample a second, last ${samples.length} s: ${lo.toFixed(0)}–${hi.toFixed(0)} ms` : 'no probe answer yet'),
    svg('line', { class: 'axis', x1: plot.left, y1: plot.top, x2: plot.left, y2: plot.bottom }),
    svg('line', { class: 'axis', x1: plot.left, y1: plot.bottom, x2: plot.right, y2: plot.bottom }),
    label(plot.left - 3, plot.top + 7, `${top.toFixed(0)} ms`),
    label(plot.left - 3, plot.bottom, `${floor.toFixed(0)} ms`),
    label(plot.left, height - 2, `−${slots} s`, 'start'),
    label(plot.right, height - 2, 'now'),
    samples.length > 1 && svg('polygon', { class: 'spark-area', points: `${plot.left},${plot.bottom} ${points.join(' ')} ${last![0]},${plot.bottom}` }),
    samples.length > 1 && svg('polyline', { class: 'spark-line', points: points.join(' ') }),
    last && svg('circle', { class: 'spark-dot', cx: last[0]!, cy: last[1]!, r: 2.2 }),
  );
}

/** The sparkline spreads over at least this many samples before it fills its width. */
const MIN_SLOTS = 30;

/** Sparkline length, in snapshots (one a second). */
export const HISTORY = 120;
