import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildFromCheckedInSources, buildLatencyDataset, DATASET_JSON, parseCsv, SOURCES_CSV } from '../../bench/data/build-latency-dataset.ts';
import { datasetProblems, DatasetError, loadDataset, validateDataset } from '../../bench/placement/dataset.ts';
import { benchPlacement } from '../../bench/placement/index.ts';
import { DEFAULT_REGIONS, greatCircleKm } from '../../shared/regions.ts';

/** The shipped file as plain JSON to break in tests. */
interface RawDataset {
  regions: unknown[];
  interRegionRttMs: Record<string, Record<string, unknown>>;
  cities: Array<Record<string, unknown> & { rttMs: Record<string, unknown> }>;
  [field: string]: unknown;
}
const shipped = () => JSON.parse(readFileSync(DATASET_JSON, 'utf8')) as RawDataset;

describe('latency data set', () => {
  it('bench/data/latency.json is exactly what the build script makes of the CSV sources', () => {
    expect(readFileSync(DATASET_JSON, 'utf8')).toBe(buildFromCheckedInSources());
  });

  it('validates, and spans the continents with about 40 cities', () => {
    const ds = loadDataset(fileURLToPath(DATASET_JSON));
    expect(ds.regions).toEqual(DEFAULT_REGIONS.map((r) => r.id));
    expect(ds.cities.length).toBeGreaterThanOrEqual(40);
    expect(new Set(ds.cities.map((c) => c.continent))).toEqual(new Set(['north-america', 'south-america', 'europe', 'africa', 'asia', 'oceania']));
  });

  it('carries the published inter-region figures, one cited source row per pair', () => {
    const rows = parseCsv(readFileSync(SOURCES_CSV, 'utf8'));
    expect(rows).toHaveLength(6);
    const ds = loadDataset(fileURLToPath(DATASET_JSON));
    for (const row of rows) {
      expect(row.source).toBe('public cloud inter-region latency dashboards, figures as of 2025');
      expect(ds.interRegionRttMs[row.from!]![row.to!]).toBe(Number(row.rttMs));
      expect(ds.interRegionRttMs[row.to!]![row.from!]).toBe(Number(row.rttMs));
    }
    expect(ds.interRegionRttMs['us-east']!['apac']).toBe(224);
  });

  it('city RTTs follow the labelled model fitted on the inter-region figures', () => {
    const ds = loadDataset(fileURLToPath(DATASET_JSON));
    const model = (ds.provenance as { cityRttModel: { label: string; baseRttMs: number; msPerKm: number; fibreFactor: number } }).cityRttModel;
    expect(model.label).toMatch(/MODELLED/);
    // Fitted on the six pairs: ≈ 19 ms base, ≈ 1.29 × light in fibre.
    expect(model.baseRttMs).toBeCloseTo(19.31, 1);
    expect(model.fibreFactor).toBeCloseTo(1.289, 2);
    const paris = ds.cities.find((c) => c.name === 'Paris')!;
    const euWest = DEFAULT_REGIONS.find((r) => r.id === 'eu-west')!;
    expect(paris.rttMs['eu-west']).toBeCloseTo(model.baseRttMs + model.msPerKm * greatCircleKm(paris, euWest), 1);
  });

  it('rejects CSV rows it cannot use, naming the line', () => {
    const cities = 'name,country,continent,lat,lon,populationM\nParis,FR,europe,48.86,2.35,11.1\n';
    expect(() => buildLatencyDataset('kind,from,to,rttMs,source,date\ninter-region,us-west,mars,68,x,2025\n', cities)).toThrow(/line 2: region "mars"/);
    expect(() => buildLatencyDataset('kind,from,to,rttMs,source,date\ninter-region,us-west,us-east,fast,x,2025\n', cities)).toThrow(/line 2: rttMs must be a number/);
  });
});

describe('data set validation names the field', () => {
  const cases: Array<[string, (d: RawDataset) => void, RegExp]> = [
    ['no regions', (d) => delete (d as Partial<RawDataset>).regions, /^regions must be a non-empty array/],
    ['bad region id', (d) => (d.regions[1] = 'US East'), /^regions\[1\] must be a region id/],
    ['missing pair', (d) => {
      delete d.interRegionRttMs['us-west']!['apac'];
      delete d.interRegionRttMs['apac']!['us-west'];
    }, /^interRegionRttMs\.us-west\.apac is missing/],
    ['negative RTT', (d) => (d.interRegionRttMs['eu-west']!['apac'] = -3), /^interRegionRttMs\.eu-west\.apac must be a number of ms/],
    ['unknown region in the matrix', (d) => (d.interRegionRttMs['mars'] = {}), /^interRegionRttMs\.mars is not one of regions/],
    ['city without an RTT to a region', (d) => delete d.cities[3]!.rttMs.apac, /^cities\[3\]\.rttMs\.apac must be a number of ms in \[0, 60000\] \(got nothing\)/],
    ['city RTT as a string', (d) => (d.cities[0]!.rttMs['us-east'] = '80'), /^cities\[0\]\.rttMs\.us-east must be a number/],
    ['latitude out of range', (d) => (d.cities[2]!.lat = 95), /^cities\[2\]\.lat must be a number in \[-90, 90\]/],
    ['duplicate city', (d) => (d.cities[1]!.name = d.cities[0]!.name), /^cities\[1\]\.name ".*" is duplicated/],
    ['bad weight', (d) => (d.cities[4]!.weight = 0), /^cities\[4\]\.weight must be a positive number/],
    ['no cities', (d) => (d.cities = []), /^cities must be a non-empty array/],
  ];
  it.each(cases)('%s', (_name, mutate, message) => {
    const d = shipped();
    mutate(d);
    const problems = datasetProblems(d);
    expect(problems.some((p) => message.test(p)), problems.join('\n')).toBe(true);
    expect(() => validateDataset(d, 'x.json')).toThrow(DatasetError);
  });

  it('accepts the minimal documented shape (regions, one direction per pair, cities with name, lat, lon, rttMs)', () => {
    const minimal = {
      regions: ['a', 'b'],
      interRegionRttMs: { a: { b: 50 } },
      cities: [{ name: 'X', lat: 0, lon: 0, rttMs: { a: 10, b: 40 } }],
    };
    expect(datasetProblems(minimal)).toEqual([]);
  });

  it('the simulator refuses a bad --latency file with the file and the field in the message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latency-'));
    const bad = shipped();
    bad.cities[5]!.rttMs['eu-west'] = null;
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify(bad));
    await expect(benchPlacement({ quick: true, latency: path, rooms: 5, outDir: null })).rejects.toThrow(/bad\.json is invalid:\n {2}- cities\[5\]\.rttMs\.eu-west must be a number of ms/);
    writeFileSync(path, '{ not json');
    await expect(benchPlacement({ quick: true, latency: path, rooms: 5, outDir: null })).rejects.toThrow(/not JSON/);
    await expect(benchPlacement({ quick: true, latency: join(dir, 'missing.json'), rooms: 5, outDir: null })).rejects.toThrow(/cannot read the file/);
  });
});
