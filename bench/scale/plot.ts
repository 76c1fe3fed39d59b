/**
 * Hand-written SVG (as bench/placement/report.ts draws the placement CDF): router and Redis CPU
 * against nodes as measured (left) and against participants as extrapolated (right, log–log).
 */
export interface PlotSeries {
  name: string;
  colour: string;
  points: Array<[number, number]>;
  /** Drawn dashed from this x on (e.g. beyond what can run today). */
  dashedFrom?: number;
}

interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  logY: boolean;
  series: PlotSeries[];
  /** A horizontal reference line. */
  hLine?: { y: number; label: string };
  /** A vertical reference line. */
  vLine?: { x: number; label: string };
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const short = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : v >= 1 || v === 0 ? String(Number(v.toPrecision(3))) : String(Number(v.toPrecision(2))));

/** 1, 2, 2.5 or 5 × a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 2.5, 5, 10].find((k) => k * power >= raw) ?? 10) * power;
}

function panel(p: Panel, left: number, top: number, width: number, height: number): string[] {
  const xs = p.series.flatMap((s) => s.points.map(([x]) => x));
  const ys = [...p.series.flatMap((s) => s.points.map(([, y]) => y)), ...(p.hLine ? [p.hLine.y] : [])].filter((y) => y > 0 && Number.isFinite(y));
  const xMin = 10 ** Math.floor(Math.log10(Math.min(...xs)));
  const xMax = 10 ** Math.ceil(Math.log10(Math.max(...xs)));
  const yMin = p.logY ? 10 ** Math.floor(Math.log10(Math.min(...ys))) : 0;
  const linearStep = niceStep((Math.max(...ys) * 1.1) / 5);
  const yMax = p.logY ? 10 ** Math.ceil(Math.log10(Math.max(...ys))) : Math.ceil((Math.max(...ys) * 1.1) / linearStep) * linearStep;
  const x = (v: number) => left + ((Math.log10(v) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * width;
  const y = (v: number) => (p.logY ? top + (1 - (Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * height : top + (1 - v / yMax) * height);
  const out: string[] = [`<text x="${left}" y="${top - 10}" font-weight="bold">${escapeXml(p.title)}</text>`];
  // Decades, and 2 and 5 times them over a short range.
  const xTicks: number[] = [];
  for (let d = xMin; d <= xMax * 1.001; d *= 10) for (const k of xMax / xMin <= 100 ? [1, 2, 5] : [1]) if (d * k <= xMax * 1.001) xTicks.push(d * k);
  for (const d of xTicks) {
    out.push(`<line x1="${x(d)}" y1="${top}" x2="${x(d)}" y2="${top + height}" stroke="#eee"/>`, `<text x="${x(d)}" y="${top + height + 16}" text-anchor="middle">${short(d)}</text>`);
  }
  const yTicks = p.logY ? Array.from({ length: Math.round(Math.log10(yMax / yMin)) + 1 }, (_, i) => yMin * 10 ** i) : Array.from({ length: Math.round(yMax / linearStep) + 1 }, (_, i) => i * linearStep);
  for (const t of yTicks) out.push(`<line x1="${left}" y1="${y(t)}" x2="${left + width}" y2="${y(t)}" stroke="#eee"/>`, `<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${short(t)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${left + width / 2}" y="${top + height + 36}" text-anchor="middle">${escapeXml(p.xLabel)}</text>`);
  out.push(`<text transform="translate(${left - 44} ${top + height / 2}) rotate(-90)" text-anchor="middle">${escapeXml(p.yLabel)}</text>`);
  if (p.hLine) out.push(`<line x1="${left}" y1="${y(p.hLine.y)}" x2="${left + width}" y2="${y(p.hLine.y)}" stroke="#c00" stroke-dasharray="5 4"/>`, `<text x="${left + 4}" y="${y(p.hLine.y) - 4}" fill="#c00">${escapeXml(p.hLine.label)}</text>`);
  if (p.vLine) out.push(`<line x1="${x(p.vLine.x)}" y1="${top}" x2="${x(p.vLine.x)}" y2="${top + height}" stroke="#777" stroke-dasharray="2 3"/>`, `<text x="${x(p.vLine.x) + 4}" y="${top + 14}" fill="#555">${escapeXml(p.vLine.label)}</text>`);
  for (const [k, s] of p.series.entries()) {
    const solid = s.points.filter(([px]) => s.dashedFrom === undefined || px <= s.dashedFrom);
    // The dashed part starts at the last solid point, so the line has no gap.
    const dashed = s.dashedFrom === undefined ? [] : s.points.slice(Math.max(0, solid.length - 1));
    const line = (pts: Array<[number, number]>, dash: string) => (pts.length > 1 ? `<polyline fill="none" stroke="${s.colour}" stroke-width="2"${dash} points="${pts.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ')}"/>` : '');
    out.push(line(solid, ''), line(dashed, ' stroke-dasharray="6 4"'));
    for (const [px, py] of s.points) out.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${s.colour}"/>`);
    // Legend under the axis label.
    const lx = left;
    const ly = top + height + 54 + k * 17;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.colour}" stroke-width="2.5"/>`, `<text x="${lx + 30}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  }
  return out;
}

export function scaleSvg(title: string, measured: Omit<Panel, 'title' | 'xLabel' | 'yLabel' | 'logY'>, extrapolated: Omit<Panel, 'title' | 'xLabel' | 'yLabel' | 'logY'>): string {
  const width = 980;
  const height = 490;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="20" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...panel({ ...measured, title: 'measured: steady router, every node heartbeating each second', xLabel: 'nodes (log)', yLabel: 'CPU (cores)', logY: false }, 70, 70, 360, 300),
    ...panel({ ...extrapolated, title: 'extrapolated (bench/scale/model.ts)', xLabel: 'concurrent participants (log)', yLabel: 'CPU (cores, log)', logY: true }, 570, 70, 380, 300),
    '</svg>',
  ];
  return `${parts.join('\n')}\n`;
}
