/**
 * A deliberately coarse world outline ([lon, lat] rings, latitudes 80°N–60°S) for the
 * equirectangular map behind the cascade graph: enough to recognise the continents, small enough
 * to keep in the bundle.
 */
export const WORLD: ReadonlyArray<ReadonlyArray<readonly [number, number]>> = [
  // North and Central America
  [[-166, 68], [-156, 71], [-128, 70], [-95, 72], [-80, 73], [-62, 66], [-64, 60], [-56, 52], [-67, 45], [-70, 41], [-76, 35], [-81, 31], [-80, 25], [-82, 27], [-84, 30], [-90, 29], [-97, 27], [-97, 22], [-92, 18], [-87, 21], [-83, 15], [-78, 8], [-83, 8], [-92, 14], [-105, 20], [-110, 24], [-112, 30], [-117, 32], [-121, 35], [-124, 40], [-124, 47], [-131, 54], [-140, 60], [-152, 59], [-158, 56], [-165, 60]],
  // Greenland
  [[-72, 78], [-60, 80], [-30, 80], [-20, 76], [-22, 70], [-42, 60], [-50, 64], [-56, 72]],
  // South America
  [[-80, 9], [-72, 12], [-62, 10], [-50, 0], [-35, -5], [-39, -14], [-48, -26], [-58, -35], [-65, -42], [-68, -52], [-74, -50], [-72, -40], [-71, -28], [-70, -18], [-76, -14], [-81, -5], [-80, 1]],
  // Eurasia
  [[-10, 36], [-9, 43], [-2, 44], [-5, 48], [2, 51], [8, 54], [10, 57], [5, 62], [14, 67], [25, 71], [40, 68], [60, 69], [80, 73], [100, 77], [115, 73], [140, 72], [160, 70], [180, 68], [180, 64], [165, 60], [160, 54], [142, 59], [135, 54], [141, 46], [130, 42], [127, 38], [122, 40], [121, 32], [117, 24], [108, 21], [106, 16], [109, 12], [105, 9], [100, 13], [100, 7], [103, 1.5], [98, 8], [98, 16], [94, 16], [91, 22], [80, 15], [77, 8], [73, 18], [67, 24], [57, 25], [56, 27], [50, 30], [48, 29], [51, 24], [56, 24], [59, 22], [52, 16], [44, 12], [43, 16], [39, 22], [35, 28], [34, 31], [35, 36], [28, 37], [26, 40], [23, 38], [21, 40], [19, 42], [14, 45], [12, 44], [16, 40], [18, 40], [12, 38], [8, 44], [3, 43], [0, 39], [-2, 37], [-6, 36]],
  // Africa
  [[-17, 21], [-16, 28], [-10, 30], [-6, 36], [10, 37], [11, 33], [20, 31], [32, 31], [34, 28], [38, 18], [43, 12], [51, 11], [48, 5], [40, -3], [40, -11], [35, -20], [33, -26], [27, -34], [20, -35], [18, -30], [12, -18], [13, -9], [9, -1], [9, 4], [4, 6], [-4, 5], [-8, 4], [-13, 8], [-17, 14]],
  // Great Britain, Ireland
  [[-5, 50], [1, 51], [2, 53], [-1, 55], [-2, 58], [-5, 58], [-6, 56], [-3, 54], [-4, 52]],
  [[-10, 52], [-6, 52], [-6, 55], [-8, 55], [-10, 54]],
  // Madagascar, Japan, Sumatra, Java, Borneo, Australia, New Zealand
  [[44, -25], [50, -15], [49, -12], [43, -17]],
  [[130, 31], [135, 34], [140, 35], [142, 40], [141, 45], [145, 44], [140, 41], [139, 37], [133, 35]],
  [[95, 5], [106, -6], [104, -6], [98, 2]],
  [[105, -6], [114, -7.5], [114, -8.5], [105, -7]],
  [[109, 2], [117, 7], [119, 1], [116, -4], [110, -3]],
  [[114, -22], [122, -18], [130, -12], [137, -12], [142, -11], [146, -19], [153, -25], [151, -34], [146, -39], [138, -35], [130, -32], [115, -34], [114, -26]],
  [[172, -35], [178, -38], [174, -41], [167, -46], [171, -44]],
];

/** The map's frame: 2 px per degree, 80°N at the top, 60°S at the bottom. */
export const MAP = { width: 720, height: 280, north: 80 } as const;

export function project(lon: number, lat: number): { x: number; y: number } {
  return { x: (lon + 180) * 2, y: (MAP.north - lat) * 2 };
}

export function outlinePath(): string {
  return WORLD.map((ring) => ring.map(([lon, lat], i) => `${i === 0 ? 'M' : 'L'}${project(lon, lat).x.toFixed(0)} ${project(lon, lat).y.toFixed(0)}`).join('') + 'Z').join('');
}

type LonLat = { lon: number; lat: number };
type Point = { x: number; y: number };

/**
 * The shorter great-circle arc from `a` to `b`, as the map draws it: sampled along the sphere and
 * projected, cut in pieces where it crosses the antimeridian (us-west ↔ apac leaves the map's left
 * edge over the Pacific and comes back on the right), so that a link is drawn the way it goes.
 */
export function greatCircleArc(a: LonLat, b: LonLat, steps = 48): Array<Array<LonLat & Point>> {
  const rad = Math.PI / 180;
  const vec = (p: LonLat) => [Math.cos(p.lat * rad) * Math.cos(p.lon * rad), Math.cos(p.lat * rad) * Math.sin(p.lon * rad), Math.sin(p.lat * rad)] as const;
  const u = vec(a);
  const v = vec(b);
  const angle = Math.acos(Math.min(1, Math.max(-1, u[0] * v[0] + u[1] * v[1] + u[2] * v[2])));
  const pieces: Array<Array<LonLat & Point>> = [[]];
  let previous: LonLat | null = null;
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    // Spherical interpolation; the same point twice (angle 0) stays put.
    const [wa, wb] = angle < 1e-9 ? [1 - t, t] : [Math.sin((1 - t) * angle) / Math.sin(angle), Math.sin(t * angle) / Math.sin(angle)];
    const x = wa * u[0] + wb * v[0];
    const y = wa * u[1] + wb * v[1];
    const z = wa * u[2] + wb * v[2];
    const point = { lon: Math.atan2(y, x) / rad, lat: Math.atan2(z, Math.hypot(x, y)) / rad };
    if (previous && Math.abs(point.lon - previous.lon) > 180) {
      // Crossing the antimeridian: end this piece on the map's edge and start the next on the other.
      const edge = previous.lon > 0 ? 180 : -180;
      const f = (edge - previous.lon) / (point.lon + 2 * edge - previous.lon);
      const lat = previous.lat + f * (point.lat - previous.lat);
      pieces.at(-1)!.push({ lon: edge, lat, ...project(edge, lat) });
      pieces.push([{ lon: -edge, lat, ...project(-edge, lat) }]);
    }
    pieces.at(-1)!.push({ ...point, ...project(point.lon, point.lat) });
    previous = point;
  }
  return pieces;
}
