import { createHash, timingSafeEqual } from 'node:crypto';

/** The hash an operator configures instead of the secret: `printf %s "$KEY" | sha256sum`. */
export function hashCredential(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * Accepted credentials, kept only as SHA-256 digests. A presented secret is hashed and compared
 * with every digest in constant time (no early exit), so neither its content, its length nor
 * which of several keys it matched leaks through timing. A high-entropy key needs no slow hash:
 * the digest only has to keep the key itself out of the process's memory and configuration.
 */
export class CredentialHashes {
  readonly #digests: readonly Buffer[];

  /** `secrets` are hashed at once and not kept; `hashes` are SHA-256 digests as 64 lowercase hex digits (`sha256sum`'s output). */
  constructor(secrets: readonly string[], hashes: readonly string[] = []) {
    this.#digests = [...secrets.filter((s) => s !== '').map(hashCredential), ...hashes].map((h) => Buffer.from(h, 'hex'));
  }

  /** No credential configured: nothing matches. */
  get empty(): boolean {
    return this.#digests.length === 0;
  }

  matches(presented: string): boolean {
    const digest = createHash('sha256').update(presented).digest();
    let found = false;
    for (const d of this.#digests) found = timingSafeEqual(digest, d) || found;
    return found;
  }
}

/** A comma-separated list of hex digests (validated by the config's pattern). */
export function parseCredentialHashes(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : /^Bearer (.+)$/i.exec(authorization)?.[1];
}
