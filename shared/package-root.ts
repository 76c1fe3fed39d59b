import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Manifest {
  name: string;
  version: string;
}

/**
 * Where geo-sfu is installed (a checkout, or /app in the image): the nearest folder above this
 * module holding geo-sfu's package.json. Files that ship beside the code (package.json, the
 * dashboard's web/dist) are found from here rather than by a fixed number of `..`, because the
 * same module runs from the sources (shared/) and from the build (dist/shared/, one level deeper).
 */
function findPackage(from: string): { root: string; manifest: Manifest } {
  for (let dir = from; ; dir = dirname(dir)) {
    const path = join(dir, 'package.json');
    const manifest = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Manifest) : null;
    if (manifest?.name === 'geo-sfu') return { root: dir, manifest };
    if (dirname(dir) === dir) throw new Error(`no geo-sfu package.json in ${from} or above`);
  }
}

const found = findPackage(dirname(fileURLToPath(import.meta.url)));

export const PACKAGE_ROOT = found.root;
/** geo-sfu's version, from its package.json. */
export const PACKAGE_VERSION = found.manifest.version;
