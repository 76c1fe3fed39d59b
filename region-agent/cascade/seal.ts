import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { decodeBase64url } from '../../shared/base64url.ts';

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
  const [version, ...parts] = sealed.split('.');
  const [iv, ct, tag] = parts.map(decodeBase64url);
  if (version !== 'v1' || parts.length !== 3 || !iv || !ct || !tag) throw new Error('sealed payload: unknown format');
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  const text = Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  return JSON.parse(text) as T;
}
