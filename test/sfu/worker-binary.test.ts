import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  WorkerBinaryMissingError,
  installedMediasoupVersion,
  loadMediasoup,
  resolveWorkerBinary,
  workerCacheRoot,
  workerPointerFile,
} from '../../sfu/worker-binary.ts';

describe('worker binary resolution', () => {
  const dir = mkdtempSync(join(tmpdir(), 'geo-sfu-wb-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('computes the cache paths like build-worker.sh', () => {
    const env = { GEO_SFU_CACHE_DIR: dir };
    expect(workerCacheRoot(env)).toBe(join(dir, 'mediasoup-worker'));
    expect(workerPointerFile({ env })).toBe(
      join(dir, 'mediasoup-worker', `current-${installedMediasoupVersion()}`),
    );
    expect(workerCacheRoot({ HOME: '/home/x' })).toBe('/home/x/.cache/geo-sfu/mediasoup-worker');
  });

  it('names npm run setup when the binary is missing', () => {
    expect(() => resolveWorkerBinary({ env: { GEO_SFU_CACHE_DIR: dir } })).toThrow(WorkerBinaryMissingError);
    expect(() => resolveWorkerBinary({ env: { GEO_SFU_CACHE_DIR: dir } })).toThrow(/npm run setup/);
    mkdirSync(workerCacheRoot({ GEO_SFU_CACHE_DIR: dir }), { recursive: true });
    writeFileSync(workerPointerFile({ env: { GEO_SFU_CACHE_DIR: dir } }), join(dir, 'nope') + '\n');
    expect(() => resolveWorkerBinary({ env: { GEO_SFU_CACHE_DIR: dir } })).toThrow(/npm run setup/);
    expect(() => resolveWorkerBinary({ env: { MEDIASOUP_WORKER_BIN: 'skip' } })).toThrow(/MEDIASOUP_WORKER_BIN/);
  });

  it('MEDIASOUP_WORKER_BIN wins over the cache', () => {
    const bin = resolveWorkerBinary();
    expect(resolveWorkerBinary({ env: { MEDIASOUP_WORKER_BIN: bin, GEO_SFU_CACHE_DIR: dir } })).toBe(bin);
  });

  it('loads mediasoup with the offline-built worker and starts it', async () => {
    const bin = resolveWorkerBinary();
    const mediasoup = await loadMediasoup();
    expect(process.env['MEDIASOUP_WORKER_BIN']).toBe(bin);
    expect(mediasoup.workerBin).toBe(bin);
    const worker = await mediasoup.createWorker({ logLevel: 'warn' });
    try {
      expect(worker.pid).toBeGreaterThan(0);
      const usage = await worker.getResourceUsage();
      expect(usage.ru_maxrss).toBeGreaterThan(0);
    } finally {
      worker.close();
    }
  });
});
