/** GF(2^8) as the pipe conditioner's repair symbols use it (region-agent/cascade/gf256.ts). */
import { describe, expect, it } from 'vitest';

import { gfInv, gfMul, gfMulAdd, gfScale } from '../../region-agent/cascade/gf256.ts';

/** Carry-less multiplication reduced by 0x11d: the field's definition, bit by bit. */
function slowMul(a: number, b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) if (b & (1 << i)) r ^= a << i;
  for (let bit = 15; bit >= 8; bit--) if (r & (1 << bit)) r ^= 0x11d << (bit - 8);
  return r;
}

describe('GF(2^8)', () => {
  it('multiplies as the polynomial definition does, and every non-zero element has its inverse', () => {
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) expect(gfMul(a, b)).toBe(slowMul(a, b));
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInv(a))).toBe(1);
    expect(() => gfInv(0)).toThrow(RangeError);
  });

  it('scales and accumulates buffers element by element', () => {
    const src = Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff);
    for (const c of [0, 1, 2, 0x53, 0xff]) {
      const dst = Uint8Array.from({ length: 301 }, (_, i) => (i * 91) & 0xff);
      const expected = dst.map((v, i) => (i < src.length ? v ^ slowMul(c, src[i]!) : v));
      gfMulAdd(dst, src, c);
      expect(dst).toEqual(expected);
      const scaled = Uint8Array.from(src);
      gfScale(scaled, c);
      expect(scaled).toEqual(src.map((v) => slowMul(c, v)));
    }
  });
});
