/**
 * The one base64url decoder for anything a signature or MAC vouches for (tokens, grants, resume
 * credentials, request signatures, sealed cascade keys). Node's decoder skips characters outside
 * the alphabet and ignores the unused low bits of the last character, so many strings decode to
 * the same bytes: a token with `!!!` appended still verified, and anything keyed by the string
 * (a rate-limit bucket) saw a new key. Here a string is accepted only if it is the canonical
 * encoding of its bytes: unpadded base64url that re-encodes to exactly itself.
 */
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The bytes `text` encodes, or null when it is not their one canonical (unpadded) base64url spelling. */
export function decodeBase64url(text: string): Buffer | null {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}
