import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encryption of the cascade messages that carry SRTP keys (a pipe's endpoint with its
 * srtpParameters), on top of the request signature (which authenticates but does not hide).
 *
 * key   = HKDF-SHA256(ikm = cluster secret, salt = '', info = 'geo-sfu pipe', 32 bytes)
 * seal  = AES-256-GCM with a random 96-bit IV; the additional data binds the ciphertext to the
 *         message kind and the link (`open|roomId|fromNodeId|toNodeId|linkId`), so a sealed
 *         endpoint cannot be replayed into another room, link or direction.
 * wire  = `v1.<iv>.<ciphertext>.<tag>` (base64url parts).
 */
export const PIPE_KEY_INFO = 'geo-sfu pipe';

export function derivePipeKey(clusterSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clusterSecret, Buffer.alloc(0), PIPE_KEY_INFO, 32));
}

export function seal(key: Buffer, plaintext: unknown, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(JSON.stringify(plaintext), 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Throws when the text was not sealed with this key and additional data (or was altered). */
export function unseal<T>(key: Buffer, sealed: string, aad: string): T {
  const [version, iv, ct, tag] = sealed.split('.');
  if (version !== 'v1' || iv === undefined || ct === undefined || tag === undefined) throw new Error('sealed payload: unknown format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  const text = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  return JSON.parse(text) as T;
}
