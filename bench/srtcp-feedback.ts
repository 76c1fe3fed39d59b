import { createCipheriv, createHmac } from 'node:crypto';

/**
 * The RTCP a WebRTC receiver sends back on its downlink, SRTCP-protected (AES_CM_128_HMAC_SHA1_80,
 * RFC 3711) with the key the transport was given for what its remote end sends: receiver reports,
 * REMB bandwidth estimates and generic NACKs, built here so the consumers benchmark can load a
 * worker with the feedback real clients send (it has no browsers: its receivers never read).
 */

/** RFC 3711 §4.3.1 key derivation (key derivation rate 0): a session key for `label` from the master key and salt. */
function deriveKey(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  // key_id = label || r (r = 0, 48 bits), right-aligned with the 112-bit salt: the label is its byte 7.
  const x = Buffer.from(masterSalt);
  x[7]! ^= label;
  const cipher = createCipheriv('aes-128-ctr', masterKey, Buffer.concat([x, Buffer.alloc(2)]));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/** One SRTCP sender context (one sender SSRC): protects compound RTCP packets in order. */
export class SrtcpSender {
  readonly #encryptionKey: Buffer;
  readonly #authKey: Buffer;
  readonly #salt: Buffer;
  #index = 0;

  /** `keyBase64`: the 30-byte master key + salt given to the transport's `connect({ srtpParameters })`. */
  constructor(keyBase64: string) {
    const master = Buffer.from(keyBase64, 'base64');
    if (master.length !== 30) throw new Error('AES_CM_128_HMAC_SHA1_80 needs a 30-byte master key and salt');
    const masterKey = master.subarray(0, 16);
    const masterSalt = master.subarray(16);
    this.#encryptionKey = deriveKey(masterKey, masterSalt, 0x03, 16);
    this.#authKey = deriveKey(masterKey, masterSalt, 0x04, 20);
    this.#salt = deriveKey(masterKey, masterSalt, 0x05, 14);
  }

  /** The SRTCP packet of a compound RTCP packet: body after the first 8 bytes encrypted, E flag and index, 80-bit tag. */
  protect(rtcp: Buffer): Buffer {
    const index = this.#index++ & 0x7fffffff;
    const ssrc = rtcp.readUInt32BE(4);
    // IV = (k_s · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16).
    const iv = Buffer.concat([this.#salt, Buffer.alloc(2)]);
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    iv.writeUInt32BE((iv.readUInt32BE(10) ^ index) >>> 0, 10);
    const cipher = createCipheriv('aes-128-ctr', this.#encryptionKey, iv);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32BE((0x80000000 | index) >>> 0);
    const protectedPart = Buffer.concat([rtcp.subarray(0, 8), cipher.update(rtcp.subarray(8)), cipher.final(), trailer]);
    const tag = createHmac('sha1', this.#authKey).update(protectedPart).digest().subarray(0, 10);
    return Buffer.concat([protectedPart, tag]);
  }
}

const header = (countOrFmt: number, packetType: number, bytes: number): Buffer => {
  const h = Buffer.alloc(4);
  h[0] = 0x80 | countOrFmt;
  h[1] = packetType;
  h.writeUInt16BE(bytes / 4 - 1, 2);
  return h;
};

/**
 * A receiver's compound feedback for the media SSRCs it receives: a receiver report with a block
 * per SSRC (no loss), a REMB with `bitrateBps`, and, with `nackSequence`, a generic NACK per SSRC.
 */
export function receiverFeedback(senderSsrc: number, mediaSsrcs: number[], bitrateBps: number, nackSequence?: number): Buffer {
  const blocks = mediaSsrcs.slice(0, 31).map((ssrc) => {
    const block = Buffer.alloc(24);
    block.writeUInt32BE(ssrc, 0);
    return block;
  });
  const rrBytes = 8 + 24 * blocks.length;
  const rr = Buffer.concat([header(blocks.length, 201, rrBytes), u32(senderSsrc), ...blocks]);
  let exponent = 0;
  let mantissa = Math.max(0, Math.round(bitrateBps));
  while (mantissa > 0x3ffff) {
    mantissa >>>= 1;
    exponent++;
  }
  const rembBytes = 20 + 4 * mediaSsrcs.length;
  const remb = Buffer.concat([
    header(15, 206, rembBytes),
    u32(senderSsrc),
    u32(0),
    Buffer.from('REMB'),
    u32(((mediaSsrcs.length & 0xff) << 24) | (exponent << 18) | mantissa),
    ...mediaSsrcs.map(u32),
  ]);
  const nacks =
    nackSequence === undefined
      ? []
      : mediaSsrcs.map((ssrc) => Buffer.concat([header(1, 205, 16), u32(senderSsrc), u32(ssrc), Buffer.from([(nackSequence >> 8) & 0xff, nackSequence & 0xff, 0, 0])]));
  return Buffer.concat([rr, remb, ...nacks]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
