import { h, svg } from '../dom.ts';
import type { DashboardRoom, DashboardSnapshot } from '../types.ts';
import { MAP, outlinePath, project } from '../world.ts';

const OUTLINE = outlinePath();

/**
 * Regions placed by lon/lat on an equirectangular outline; the rooms' cascade links between them
 * (width by how many rooms use the link, labelled with the measured RTT); the selected room's links
 * highlighted. Without admin data only the regions (and the measured mesh, faint) are drawn.
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

  const mesh = regions.flatMap((a, i) =>
    regions.slice(i + 1).map((b) => {
      const p = at.get(a.id)!;
      const q = at.get(b.id)!;
      return svg('path', { class: 'mesh', d: curve(p, q) });
    }),
  );
  const cascade = [...links.entries()].map(([key, l]) => {
    const p = at.get(l.from);
    const q = at.get(l.to);
    if (!p || !q) return null;
    const rtt = snapshot.regions.interRegionRttMs[l.from]?.[l.to];
    const mid = midpoint(p, q);
    const state = selected === null ? '' : chosen.has(key) ? ' selected' : ' dimmed';
    const path = svg('path', { class: `link${state}`, d: curve(p, q), 'data-link': key, 'data-rooms': l.rooms });
    path.style.strokeWidth = String(2 + Math.log2(l.rooms) * 1.5);
    return svg(
      'g',
      null,
      svg('title', null, `${l.from} ↔ ${l.to}: ${l.rooms} room${l.rooms === 1 ? '' : 's'}, RTT ${rtt == null ? 'not measured' : `${Math.round(rtt)} ms`}`),
      path,
      rtt != null && svg('text', { class: `link-label${state}`, x: mid.x, y: mid.y - 4, 'text-anchor': 'middle' }, `${Math.round(rtt)} ms`),
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
          : `${links.size} region pair${links.size === 1 ? '' : 's'} linked by cascades across ${snapshot.rooms.length} room${snapshot.rooms.length === 1 ? '' : 's'}; ringed: home regions; labels: participants. Click a room to highlight it.`,
    ),
  );
}

type Point = { x: number; y: number };

/** A gentle arc bowed towards the pole, so links between neighbours stay apart. */
function control(p: Point, q: Point): Point {
  const dx = q.x - p.x;
  const dy = q.y - p.y;
  const bow = Math.hypot(dx, dy) * 0.18;
  const nx = -dy;
  const ny = dx;
  const len = Math.hypot(nx, ny) || 1;
  const sign = ny > 0 ? -1 : 1;
  return { x: (p.x + q.x) / 2 + (sign * nx * bow) / len, y: (p.y + q.y) / 2 + (sign * ny * bow) / len };
}

function curve(p: Point, q: Point): string {
  const c = control(p, q);
  return `M${p.x.toFixed(1)} ${p.y.toFixed(1)}Q${c.x.toFixed(1)} ${c.y.toFixed(1)} ${q.x.toFixed(1)} ${q.y.toFixed(1)}`;
}

function midpoint(p: Point, q: Point): Point {
  const c = control(p, q);
  return { x: 0.25 * p.x + 0.5 * c.x + 0.25 * q.x, y: 0.25 * p.y + 0.5 * c.y + 0.25 * q.y };
}
