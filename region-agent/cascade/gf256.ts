/**
 * GF(2^8) arithmetic for the pipe conditioner's repair symbols (./conditioner.ts): the field of
 * Reed-Solomon codes and of RFC 8681's sliding-window codes, with the primitive polynomial
 * x^8 + x^4 + x^3 + x^2 + 1 (0x11d). Addition is XOR; multiplication goes through log/exp tables.
 */
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  // Doubled, so a sum of two logs needs no modulo.
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
}

export function gfMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!;
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('gfInv(0)');
  return EXP[255 - LOG[a]!]!;
}

/** dst[i] ^= c × src[i] for i < src.length (dst at least as long). */
export function gfMulAdd(dst: Uint8Array, src: Uint8Array, c: number): void {
  if (c === 0) return;
  const n = src.length;
  if (c === 1) {
    for (let i = 0; i < n; i++) dst[i]! ^= src[i]!;
    return;
  }
  const lc = LOG[c]!;
  for (let i = 0; i < n; i++) {
    const v = src[i]!;
    if (v !== 0) dst[i]! ^= EXP[LOG[v]! + lc]!;
  }
}

/** buf[i] = c × buf[i]. */
export function gfScale(buf: Uint8Array, c: number): void {
  if (c === 1) return;
  if (c === 0) {
    buf.fill(0);
    return;
  }
  const lc = LOG[c]!;
  for (let i = 0; i < buf.length; i++) {
    const v = buf[i]!;
    if (v !== 0) buf[i] = EXP[LOG[v]! + lc]!;
  }
}
