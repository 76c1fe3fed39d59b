import type { DashboardRoom, DashboardSnapshot } from '../types.ts';
import { bitrate, h, svg } from '../dom.ts';
import { greatCircleArc, MAP, outlinePath, project } from '../world.ts';

const OUTLINE = outlinePath();

/**
 * Regions placed by lon/lat on an equirectangular outline; the rooms' cascade links between them
 * along the shorter great circle (width by how many rooms use the link, labelled with the measured
 * RTT and the media the links carry); the selected room's links highlighted; a key to the marks.
 * Without admin data only the regions (and the measured mesh, dashed) are drawn.
 */
export function graphPanel(snapshot: DashboardSnapshot, selected: DashboardRoom | null): HTMLElement {
  const regions = snapshot.regions.regions;
  const at = new Map(regions.map((r) => [r.id, project(r.lon, r.lat)]));
  const links = new Map<string, { from: string; to: string; rooms: number }>();
  for (const room of snapshot.rooms ?? []) {
    for (const l of room.links) {
      const key = `${l.from}~${l.to}`;
      links.set(key, { ...l, rooms: (links.get(key)?.rooms ?? 0) + 1 });
    }
  }
  const people = new Map<string, number>();
  for (const room of snapshot.rooms ?? []) for (const e of room.edges) people.set(e.region, (people.get(e.region) ?? 0) + e.count);
  const homes = new Set((snapshot.rooms ?? []).map((r) => r.homeRegion));
  const chosen = new Set(selected?.links.map((l) => `${l.from}~${l.to}`) ?? []);

  const lonLat = new Map(regions.map((r) => [r.id, { lon: r.lon, lat: r.lat }]));
  const mesh = regions.flatMap((a, i) => regions.slice(i + 1).map((b) => svg('path', { class: 'mesh', d: arcPath(greatCircleArc(a, b)) })));
  // Media each region pair's links carry: what each side sends to the other, summed.
  const carried = new Map<string, number>();
  const sent = new Map<string, number>();
  for (const l of snapshot.media?.links ?? []) {
    if (l.region === l.peerRegion) continue;
    const key = [l.region, l.peerRegion].sort().join('~');
    carried.set(key, (carried.get(key) ?? 0) + l.outBps);
    sent.set(`${l.region}→${l.peerRegion}`, (sent.get(`${l.region}→${l.peerRegion}`) ?? 0) + l.outBps);
  }
  const cascade = [...links.entries()].map(([key, l]) => {
    const a = lonLat.get(l.from);
    const b = lonLat.get(l.to);
    if (!a || !b) return null;
    const arc = greatCircleArc(a, b);
    const rtt = snapshot.regions.interRegionRttMs[l.from]?.[l.to];
    const bps = carried.get(key);
    const mid = arcMidpoint(arc);
    const state = selected === null ? '' : chosen.has(key) ? ' selected' : ' dimmed';
    const path = svg('path', { class: `link${state}`, d: arcPath(arc), 'data-link': key, 'data-rooms': l.rooms, 'data-bps': bps ?? '' });
    path.style.strokeWidth = String(2 + Math.log2(l.rooms) * 1.5);
    const label = [rtt != null ? `${Math.round(rtt)} ms` : null, bps !== undefined ? bitrate(bps) : null].filter(Boolean).join(' · ');
    return svg(
      'g',
      null,
      svg('title', null, `${l.from} ↔ ${l.to}: ${l.rooms} room${l.rooms === 1 ? '' : 's'}, RTT ${rtt == null ? 'not measured' : `${Math.round(rtt)} ms`}, media ${bps === undefined ? 'not reported' : `${bitrate(bps)}: ${l.from} → ${l.to} ${bitrate(sent.get(`${l.from}→${l.to}`) ?? 0)}, ${l.to} → ${l.from} ${bitrate(sent.get(`${l.to}→${l.from}`) ?? 0)}`}`),
      path,
      label !== '' && svg('text', { class: `link-label${state}`, x: mid.x, y: mid.y - 4, 'text-anchor': 'middle', 'data-link-label': key }, label),
    );
  });
  const nodes = regions.map((r) => {
    const p = at.get(r.id)!;
    const n = people.get(r.id) ?? 0;
    const inSelected = selected?.edges.find((e) => e.region === r.id);
    const label = snapshot.rooms ? `${r.id} · ${selected ? (inSelected?.count ?? 0) : n}` : r.id;
    const labelBelow = r.lat < 20;
    return svg(
      'g',
      { class: `region-node ${r.healthy ? 'ok' : 'bad'}${selected && !inSelected ? ' dimmed' : ''}`, 'data-region-node': r.id },
      svg('title', null, `${r.displayName}${snapshot.rooms ? `: ${n} participant${n === 1 ? '' : 's'}` : ''}`),
      svg('circle', { class: 'halo', cx: p.x, cy: p.y, r: 9 + Math.min(9, Math.sqrt(n) * 2) }),
      svg('circle', { class: 'dot', cx: p.x, cy: p.y, r: 5 }),
      (selected ? selected.homeRegion === r.id : homes.has(r.id)) && svg('circle', { class: 'home-ring', cx: p.x, cy: p.y, r: 8 }),
      svg('text', { class: 'node-label', x: p.x, y: labelBelow ? p.y + 24 : p.y - 14, 'text-anchor': 'middle' }, label),
    );
  });
  const graticule = [-120, -60, 0, 60, 120].map((lon) => svg('line', { class: 'graticule', x1: project(lon, 0).x, x2: project(lon, 0).x, y1: 0, y2: MAP.height }));
  graticule.push(...[60, 30, 0, -30].map((lat) => svg('line', { class: 'graticule', x1: 0, x2: MAP.width, y1: project(0, lat).y, y2: project(0, lat).y })));
  return h(
    'div',
    { class: 'graph' },
    svg(
      'svg',
      { viewBox: `0 0 ${MAP.width} ${MAP.height}`, class: 'map', role: 'img', 'aria-label': 'regions and cascade links' },
      svg('rect', { class: 'sea', x: 0, y: 0, width: MAP.width, height: MAP.height, rx: 6 }),
      graticule,
      svg('path', { class: 'land', d: OUTLINE }),
      mesh,
      cascade,
      nodes,
    ),
    h(
      'div',
      { class: 'muted small legend' },
      snapshot.rooms === undefined
        ? 'Regions by location. Cascade links need the admin token.'
        : selected
          ? `Room ${selected.roomId}: home ${selected.homeRegion} (ringed), ${selected.links.length} cascade link${selected.links.length === 1 ? '' : 's'}. Click the room again to show all.`
          : `${links.size} region pair${links.size === 1 ? '' : 's'} linked by cascades across ${snapshot.rooms.length} room${snapshot.rooms.length === 1 ? '' : 's'}. Click a room to highlight it.`,
    ),
    h(
      'ul',
      { class: 'map-key muted small', 'data-map-key': '' },
      h('li', null, keyMark('link'), snapshot.rooms === undefined ? 'cascade link (admin view)' : 'cascade link: rooms with participants in both regions (thicker: more rooms); label: RTT measured between the agents · media it carries, both directions'),
      h('li', null, keyMark('mesh'), 'regions whose agents measure each other (no room linked yet)'),
      h('li', null, keyMark('ring'), 'home region of a room'),
      h('li', null, h('b', null, 'region · n'), ': participants placed there'),
      h('li', null, 'links follow the shorter great circle (across the Pacific between the Americas and Asia)'),
    ),
  );
}

type Point = { x: number; y: number };

function arcPath(arc: Point[][]): string {
  return arc.map((piece) => piece.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join('')).join('');
}

/** The middle of the arc's longest piece (where its label goes). */
function arcMidpoint(arc: Point[][]): Point {
  const piece = arc.reduce((a, b) => (b.length > a.length ? b : a));
  return piece[Math.floor(piece.length / 2)]!;
}

/** A sample of each map mark for the key. */
function keyMark(kind: 'link' | 'mesh' | 'ring'): SVGSVGElement {
  return svg(
    'svg',
    { class: 'key-mark', viewBox: '0 0 28 12', width: 28, height: 12 },
    kind === 'ring' ? svg('circle', { class: 'home-ring', cx: 14, cy: 6, r: 4.5 }) : svg('line', { class: kind, x1: 2, y1: 6, x2: 26, y2: 6 }),
  );
}
