/**
 * Locating the mediasoup-worker binary and loading mediasoup with it.
 *
 * The worker is not downloaded by `npm ci` (its postinstall is not run).
 * `npm run setup` (infra/mediasoup/build-worker.sh) builds it offline from
 * Debian libraries and caches it outside the clone at
 *
 *   ${GEO_SFU_CACHE_DIR:-$HOME/.cache/geo-sfu}/mediasoup-worker/<key>/mediasoup-worker
 *
 * where <key> depends on the mediasoup version, the Debian library versions
 * and the overlay files. Because the key needs dpkg, the script also writes
 * the absolute path of the binary it resolved to
 *
 *   ${GEO_SFU_CACHE_DIR:-$HOME/.cache/geo-sfu}/mediasoup-worker/current-<mediasoup version>
 *
 * and this module reads that pointer file. `MEDIASOUP_WORKER_BIN`, when set,
 * wins over the cache (mediasoup's own convention).
 *
 * mediasoup reads `MEDIASOUP_WORKER_BIN` once, when its module is first
 * evaluated, so everything in sfu/ obtains mediasoup through loadMediasoup(),
 * which sets the variable before the dynamic import. Type-only imports of
 * mediasoup are fine anywhere.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import type * as Mediasoup from 'mediasoup';

export type MediasoupModule = typeof Mediasoup;

export interface WorkerBinaryOptions {
  /** Environment to read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** mediasoup version (default: the installed package's version). */
  mediasoupVersion?: string;
}

/** Thrown when no usable mediasoup-worker binary can be found. */
export class WorkerBinaryMissingError extends Error {
  override readonly name = 'WorkerBinaryMissingError';
}

const require = createRequire(import.meta.url);

let cachedVersion: string | undefined;

/** Version of the installed mediasoup package (node_modules/mediasoup). */
export function installedMediasoupVersion(): string {
  if (cachedVersion === undefined) {
    // mediasoup's "exports" hides package.json: walk up from its entry point.
    let dir = dirname(require.resolve('mediasoup'));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === 'mediasoup' && pkg.version) {
          cachedVersion = pkg.version;
          break;
        }
      } catch {
        // no package.json here
      }
      const parent = dirname(dir);
      if (parent === dir) throw new Error('cannot find the mediasoup package.json');
      dir = parent;
    }
  }
  return cachedVersion;
}

/** `${GEO_SFU_CACHE_DIR:-$HOME/.cache/geo-sfu}/mediasoup-worker` */
export function workerCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['GEO_SFU_CACHE_DIR'] || join(env['HOME'] || homedir(), '.cache', 'geo-sfu');
  return join(resolve(base), 'mediasoup-worker');
}

/** Pointer file written by build-worker.sh: holds the binary's absolute path. */
export function workerPointerFile(options: WorkerBinaryOptions = {}): string {
  const version = options.mediasoupVersion ?? installedMediasoupVersion();
  return join(workerCacheRoot(options.env), `current-${version}`);
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const SETUP_HINT = 'run `npm run setup` (builds it offline into the cache, ~6 minutes the first time)';

/**
 * Absolute path of the mediasoup-worker binary to use.
 *
 * 1. `MEDIASOUP_WORKER_BIN` if set (must be an executable file);
 * 2. else the path in `<cache>/mediasoup-worker/current-<mediasoup version>`.
 *
 * @throws WorkerBinaryMissingError naming `npm run setup` when none is usable.
 */
export function resolveWorkerBinary(options: WorkerBinaryOptions = {}): string {
  const env = options.env ?? process.env;
  const fromEnv = env['MEDIASOUP_WORKER_BIN'];
  if (fromEnv) {
    if (!isExecutableFile(fromEnv)) {
      throw new WorkerBinaryMissingError(
        `MEDIASOUP_WORKER_BIN=${fromEnv} is not an executable file; unset it to use the cached worker, or ${SETUP_HINT}`,
      );
    }
    return resolve(fromEnv);
  }
  const pointer = workerPointerFile(options);
  let bin: string;
  try {
    bin = readFileSync(pointer, 'utf8').trim();
  } catch {
    throw new WorkerBinaryMissingError(
      `mediasoup-worker binary not found (no ${pointer}); ${SETUP_HINT}`,
    );
  }
  if (!bin || !isExecutableFile(bin)) {
    throw new WorkerBinaryMissingError(
      `mediasoup-worker binary ${bin || '(empty path)'} named by ${pointer} is missing; ${SETUP_HINT}`,
    );
  }
  return bin;
}

let loading: Promise<MediasoupModule> | undefined;
let loadedWith: string | undefined;

/**
 * The mediasoup module, loaded with the resolved worker binary.
 *
 * Sets `process.env.MEDIASOUP_WORKER_BIN` before the first dynamic import of
 * mediasoup (which reads it at module load). Later calls return the same
 * module.
 *
 * @throws WorkerBinaryMissingError when no binary is available, or when
 *   mediasoup was already imported elsewhere with a different binary.
 */
export function loadMediasoup(options: WorkerBinaryOptions = {}): Promise<MediasoupModule> {
  if (!loading) {
    const bin = resolveWorkerBinary(options);
    process.env['MEDIASOUP_WORKER_BIN'] = bin;
    loadedWith = bin;
    loading = import('mediasoup').then(
      (mod: MediasoupModule) => {
        if (resolve(mod.workerBin) !== bin) {
          throw new WorkerBinaryMissingError(
            `mediasoup was imported before loadMediasoup() and uses ${mod.workerBin} instead of ${bin}; ` +
              'import mediasoup only through loadMediasoup()',
          );
        }
        return mod;
      },
      (error: unknown) => {
        loading = undefined;
        loadedWith = undefined;
        throw error;
      },
    );
  }
  return loading;
}

/** Worker binary used by the loaded mediasoup module, if loadMediasoup() ran. */
export function loadedWorkerBinary(): string | undefined {
  return loadedWith;
}
