/**
 * Builds bench/data/latency.json from the checked-in sources:
 *   - latency-sources.csv (kind, from, to, rttMs, source, date): the published inter-region RTTs;
 *   - cities.csv (name, country, continent, lat, lon, populationM): the cities rooms are drawn from.
 * City → region RTTs are MODELLED, not measured: rtt = base + msPerKm × great-circle km, with base
 * and msPerKm fitted by least squares on the inter-region rows, placing each region at its
 * location in the router's default catalog (shared/regions.ts).
 *
 *   node --import tsx bench/data/build-latency-dataset.ts            # (re)write latency.json
 *   node --import tsx bench/data/build-latency-dataset.ts --check    # exit 1 if it differs
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DEFAULT_REGIONS, greatCircleKm, type RegionInfo } from '../../shared/regions.ts';
import { validateDataset, type LatencyDataset } from '../placement/dataset.ts';

const HERE = new URL('./', import.meta.url);
export const SOURCES_CSV = new URL('latency-sources.csv', HERE);
export const CITIES_CSV = new URL('cities.csv', HERE);
export const DATASET_JSON = new URL('latency.json', HERE);

/** RTT per km of great-circle distance for light in fibre (≈ 200,000 km/s), there and back. */
const FIBRE_MS_PER_KM = 0.01;

/** RFC 4180 CSV: header row, quoted fields with "" escapes; returns one object per row. */
export function parseCsv(text: string): Array<Record<string, string>> {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  const [header, ...body] = rows;
  if (!header) return [];
  return body.map((cells, i) => {
    if (cells.length !== header.length) throw new Error(`CSV row ${i + 2} has ${cells.length} fields, the header ${header.length}`);
    return Object.fromEntries(header.map((h, j) => [h, cells[j]!]));
  });
}

function num(row: Record<string, string>, field: string, line: number): number {
  const v = Number(row[field]);
  if (row[field] === undefined || row[field] === '' || !Number.isFinite(v)) throw new Error(`CSV line ${line}: ${field} must be a number (got ${JSON.stringify(row[field])})`);
  return v;
}

export interface GeoFit {
  baseRttMs: number;
  msPerKm: number;
  /** msPerKm over light in fibre: route inflation and equipment delay in one factor. */
  fibreFactor: number;
  fittedOn: Array<{ from: string; to: string; km: number; rttMs: number; modelMs: number }>;
}

/** Least squares rtt = base + msPerKm × km over the given pairs; parameters rounded for a stable file. */
export function fitGeoModel(pairs: ReadonlyArray<{ from: RegionInfo; to: RegionInfo; rttMs: number }>): GeoFit {
  if (pairs.length < 2) throw new Error('the geo model needs at least two inter-region RTTs to fit');
  const xs = pairs.map((p) => greatCircleKm(p.from, p.to));
  const ys = pairs.map((p) => p.rttMs);
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const my = ys.reduce((s, y) => s + y, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (const [i, x] of xs.entries()) {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  }
  const msPerKm = round(sxy / sxx, 7);
  const baseRttMs = round(my - msPerKm * mx, 2);
  return {
    baseRttMs,
    msPerKm,
    fibreFactor: round(msPerKm / FIBRE_MS_PER_KM, 3),
    fittedOn: pairs.map((p, i) => ({ from: p.from.id, to: p.to.id, km: Math.round(xs[i]!), rttMs: p.rttMs, modelMs: round(baseRttMs + msPerKm * xs[i]!, 1) })),
  };
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

export function buildLatencyDataset(sourcesCsv: string, citiesCsv: string, catalog: readonly RegionInfo[] = DEFAULT_REGIONS): LatencyDataset {
  const byId = new Map(catalog.map((r) => [r.id, r]));
  const regionOf = (id: string, line: number) => {
    const r = byId.get(id);
    if (!r) throw new Error(`CSV line ${line}: region "${id}" is not in the catalog (${[...byId.keys()].join(', ')})`);
    return r;
  };
  const interRegion = parseCsv(sourcesCsv).map((row, i) => {
    if (row.kind !== 'inter-region') throw new Error(`latency-sources.csv line ${i + 2}: unknown kind ${JSON.stringify(row.kind)} (expected inter-region)`);
    return { from: regionOf(row.from!, i + 2), to: regionOf(row.to!, i + 2), rttMs: num(row, 'rttMs', i + 2), source: row.source ?? '', date: row.date ?? '' };
  });
  const regions = catalog.map((r) => r.id);
  const interRegionRttMs: Record<string, Record<string, number>> = Object.fromEntries(regions.map((r) => [r, {}]));
  for (const row of interRegion) {
    interRegionRttMs[row.from.id]![row.to.id] = row.rttMs;
    interRegionRttMs[row.to.id]![row.from.id] = row.rttMs;
  }
  const fit = fitGeoModel(interRegion);
  const cities = parseCsv(citiesCsv).map((row, i) => {
    const location = { lat: num(row, 'lat', i + 2), lon: num(row, 'lon', i + 2) };
    return {
      name: row.name!,
      country: row.country!,
      continent: row.continent!,
      weight: num(row, 'populationM', i + 2),
      ...location,
      rttMs: Object.fromEntries(catalog.map((r) => [r.id, round(fit.baseRttMs + fit.msPerKm * greatCircleKm(location, r), 1)])),
    };
  });
  return validateDataset(
    {
      description:
        'Inter-region RTTs: published figures (see provenance.interRegion). City → region RTTs: MODELLED (great-circle distance × fibre factor + base, fitted on the inter-region figures), not measured. City weight: approximate metro population, millions.',
      regions,
      regionLocations: Object.fromEntries(catalog.map((r) => [r.id, { lat: r.lat, lon: r.lon }])),
      interRegionRttMs,
      cities,
      provenance: {
        interRegion: interRegion.map((r) => ({ from: r.from.id, to: r.to.id, rttMs: r.rttMs, source: r.source, date: r.date })),
        cityRttModel: {
          label: 'MODELLED, not measured',
          formula: 'rttMs = baseRttMs + msPerKm × greatCircleKm(city, region location of shared/regions.ts DEFAULT_REGIONS)',
          fit: 'least squares on the inter-region rows above',
          ...fit,
        },
        cities: 'bench/data/cities.csv: city-centre coordinates (0.01°), approximate metro populations in millions (sampling weights only)',
      },
    },
    'bench/data/build-latency-dataset.ts',
  );
}

/** The file's exact text. */
export function renderDataset(ds: LatencyDataset): string {
  return `${JSON.stringify(ds, null, 2)}\n`;
}

export function buildFromCheckedInSources(): string {
  return renderDataset(buildLatencyDataset(readFileSync(SOURCES_CSV, 'utf8'), readFileSync(CITIES_CSV, 'utf8')));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = buildFromCheckedInSources();
  if (process.argv.includes('--check')) {
    const current = readFileSync(DATASET_JSON, 'utf8');
    if (current !== text) {
      process.stderr.write('bench/data/latency.json is not what the sources produce: run node --import tsx bench/data/build-latency-dataset.ts\n');
      process.exit(1);
    }
    process.stdout.write('bench/data/latency.json is up to date\n');
  } else {
    writeFileSync(DATASET_JSON, text);
    process.stdout.write(`wrote ${DATASET_JSON.pathname}\n`);
  }
}
