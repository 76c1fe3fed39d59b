/**
 * Synthetic RTP/RTCP over real UDP sockets on 127.0.0.1 (ephemeral ports)
 * for the sfu tests: Opus audio and VP8 video with valid payload
 * descriptors and periodic keyframes.
 */
import { createSocket, type Socket } from 'node:dgram';

import type { types as ms } from 'mediasoup';

import type { Peer } from '../../../sfu/index.ts';
import type { EventMap, TypedEmitter } from '../../../sfu/typed-emitter.ts';

export const OPUS_PT = 100;
export const VP8_PT = 101;

export const AUDIO_LEVEL_EXT_ID = 1;

export const opusRtpParameters = (ssrc: number): ms.RtpParameters => ({
  codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2 }],
  headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: AUDIO_LEVEL_EXT_ID }],
  encodings: [{ ssrc }],
});

export const vp8RtpParameters = (ssrc: number): ms.RtpParameters => ({
  codecs: [
    {
      mimeType: 'video/VP8',
      payloadType: VP8_PT,
      clockRate: 90000,
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }],
    },
  ],
  encodings: [{ ssrc }],
});

export interface RtpHeader {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  marker?: boolean;
}

/**
 * An RTP packet. With `audioLevel` (0 = loudest .. 127 = silence, RFC 6464)
 * a one-byte header extension carries it with the voice-activity bit set.
 */
export function rtpPacket(header: RtpHeader, payload: Buffer, audioLevel?: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = audioLevel === undefined ? 0x80 : 0x90; // V=2, X
  b[1] = (header.marker ? 0x80 : 0) | (header.payloadType & 0x7f);
  b.writeUInt16BE(header.sequenceNumber & 0xffff, 2);
  b.writeUInt32BE(header.timestamp >>> 0, 4);
  b.writeUInt32BE(header.ssrc >>> 0, 8);
  if (audioLevel === undefined) return Buffer.concat([b, payload]);
  const ext = Buffer.from([0xbe, 0xde, 0x00, 0x01, AUDIO_LEVEL_EXT_ID << 4, 0x80 | (audioLevel & 0x7f), 0, 0]);
  return Buffer.concat([b, ext, payload]);
}

export function parseRtp(packet: Buffer): RtpHeader & { payload: Buffer } {
  const cc = (packet[0] ?? 0) & 0x0f;
  const hasExtension = ((packet[0] ?? 0) & 0x10) !== 0;
  let offset = 12 + cc * 4;
  if (hasExtension) offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  return {
    payloadType: (packet[1] ?? 0) & 0x7f,
    marker: ((packet[1] ?? 0) & 0x80) !== 0,
    sequenceNumber: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    ssrc: packet.readUInt32BE(8),
    payload: packet.subarray(offset),
  };
}

/** RTCP packet types are 192..223 in the second byte (RFC 5761). */
export function isRtcp(packet: Buffer): boolean {
  const pt = packet[1] ?? 0;
  return packet.length >= 8 && pt >= 192 && pt <= 223;
}

/** A 20 ms Opus frame (CELT fullband TOC byte) with filler bytes. */
export function opusPayload(frame: number): Buffer {
  const b = Buffer.alloc(60, frame & 0xff);
  b[0] = 0xfc;
  return b;
}

/**
 * VP8 payload: RFC 7741 descriptor with X, I (15-bit picture id), L
 * (TL0PICIDX) and T (TID 0, Y) set, start of partition 0, then the VP8
 * payload header whose inverse-keyframe bit is 0 for keyframes (with the
 * keyframe start code and a 640x480 size).
 */
export function vp8Payload(opts: { keyframe: boolean; pictureId: number; tl0PicIdx: number }): Buffer {
  const descriptor = Buffer.from([
    0x90, // X=1, S=1, PID=0
    0xe0, // I=1, L=1, T=1
    0x80 | ((opts.pictureId >> 8) & 0x7f), // M=1: 15-bit picture id
    opts.pictureId & 0xff,
    opts.tl0PicIdx & 0xff,
    0x20, // TID=0, Y=1, KEYIDX=0
  ]);
  const header = opts.keyframe
    ? Buffer.from([0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01])
    : Buffer.from([0x51, 0x02, 0x00]);
  return Buffer.concat([descriptor, header, Buffer.alloc(400, 0x42)]);
}

/** Whether a compound RTCP packet holds a PLI (PSFB, PT 206, FMT 1). */
function hasPli(packet: Buffer): boolean {
  for (let at = 0; at + 4 <= packet.length; at += (packet.readUInt16BE(at + 2) + 1) * 4) {
    if (packet[at + 1] === 206 && (packet[at]! & 0x1f) === 1) return true;
  }
  return false;
}

/**
 * A VP8 publisher on a plain transport of `peer` that sends a frame every 33 ms and a key frame
 * only when a PLI asked for one, as a browser does; `plis` holds the PLIs' arrival times
 * (performance.now()). Resolves once the producer receives; `close` stops it.
 */
export async function publishVp8AnsweringPlis(peer: Peer, ssrc: number): Promise<{ producer: ms.Producer; plis: number[]; close: () => void }> {
  const sendTransport = await peer.createPlainTransport({ comedia: true });
  const producer = await peer.produce({ transportId: sendTransport.id, kind: 'video', rtpParameters: vp8RtpParameters(ssrc) });
  const endpoint = await UdpEndpoint.open();
  const plis: number[] = [];
  let keyframeAsked = true;
  endpoint.onRtcp((packet) => {
    if (!hasPli(packet)) return;
    plis.push(performance.now());
    keyframeAsked = true;
  });
  let seq = 1;
  let frame = 0;
  const timer = setInterval(() => {
    const keyframe = keyframeAsked;
    keyframeAsked = false;
    endpoint.send(rtpPacket({ payloadType: VP8_PT, sequenceNumber: seq++, timestamp: frame * 3000, ssrc, marker: true }, vp8Payload({ keyframe, pictureId: frame & 0x7fff, tl0PicIdx: frame & 0xff })), sendTransport.tuple.localPort);
    frame++;
  }, 33);
  const close = () => {
    clearInterval(timer);
    endpoint.close();
  };
  try {
    await waitUntil(async () => (await producer.getStats()).some((s) => s.packetCount > 0), 5_000, 'the producer receiving');
  } catch (err) {
    close();
    throw err;
  }
  return { producer, plis, close };
}

export class UdpEndpoint {
  readonly socket: Socket;
  readonly rtp: Buffer[] = [];
  readonly rtcp: Buffer[] = [];
  #onRtcp: ((packet: Buffer) => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg) => {
      if (isRtcp(msg)) {
        this.rtcp.push(msg);
        this.#onRtcp?.(msg);
      } else {
        this.rtp.push(msg);
      }
    });
  }

  static async open(): Promise<UdpEndpoint> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpEndpoint(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  onRtcp(handler: (packet: Buffer) => void): void {
    this.#onRtcp = handler;
  }

  send(packet: Buffer, port: number): void {
    this.socket.send(packet, port, '127.0.0.1');
  }

  rtpOf(ssrc: number): Buffer[] {
    return this.rtp.filter((p) => p.readUInt32BE(8) === ssrc);
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Sends Opus (every 20 ms) and/or VP8 (every 33 ms, a keyframe every
 * `keyframeEvery` frames) to a port until stopped.
 */
export class MediaSender {
  readonly #endpoint: UdpEndpoint;
  readonly #port: number;
  readonly #timers: NodeJS.Timeout[] = [];
  sent = { audio: 0, video: 0 };

  constructor(endpoint: UdpEndpoint, port: number) {
    this.#endpoint = endpoint;
    this.#port = port;
  }

  /**
   * Opus every 20 ms. `audioLevel` (0 loud .. 127 silent, or a function of
   * the frame number) adds the audio-level header extension.
   */
  startOpus(ssrc: number, audioLevel?: number | ((frame: number) => number)): this {
    let seq = 1000;
    let ts = 12345;
    let frame = 0;
    this.#timers.push(
      setInterval(() => {
        this.#endpoint.send(
          rtpPacket(
            { payloadType: OPUS_PT, sequenceNumber: seq++, timestamp: ts, ssrc, marker: frame === 0 },
            opusPayload(frame),
            typeof audioLevel === 'function' ? audioLevel(frame) : audioLevel,
          ),
          this.#port,
        );
        ts += 960;
        frame++;
        this.sent.audio++;
      }, 20),
    );
    return this;
  }

  startVp8(ssrc: number, keyframeEvery = 10): this {
    let seq = 2000;
    let ts = 54321;
    let frame = 0;
    this.#timers.push(
      setInterval(() => {
        const keyframe = frame % keyframeEvery === 0;
        this.#endpoint.send(
          rtpPacket(
            { payloadType: VP8_PT, sequenceNumber: seq++, timestamp: ts, ssrc, marker: true },
            vp8Payload({ keyframe, pictureId: frame & 0x7fff, tl0PicIdx: frame & 0xff }),
          ),
          this.#port,
        );
        ts += 3000;
        frame++;
        this.sent.video++;
      }, 33),
    );
    return this;
  }

  stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers.length = 0;
  }
}

/**
 * Answers RTCP sender reports with receiver reports whose LSR/DLSR make the
 * SFU measure an RTT of about `delayMs` (the report is sent `delayMs` after
 * the SR with a DLSR of one 1/65536 s unit, as if the network took that long).
 */
export function answerSenderReports(endpoint: UdpEndpoint, sfuPort: number, delayMs: number): void {
  const receiverSsrc = 0x5eed;
  endpoint.onRtcp((packet) => {
    let offset = 0;
    while (offset + 8 <= packet.length) {
      const pt = packet[offset + 1];
      const len = (packet.readUInt16BE(offset + 2) + 1) * 4;
      if (pt === 200 && offset + 28 <= packet.length) {
        const senderSsrc = packet.readUInt32BE(offset + 4);
        const ntpMsw = packet.readUInt32BE(offset + 8);
        const ntpLsw = packet.readUInt32BE(offset + 12);
        const lsr = (((ntpMsw & 0xffff) << 16) | (ntpLsw >>> 16)) >>> 0;
        const rr = Buffer.alloc(32);
        rr[0] = 0x81; // V=2, RC=1
        rr[1] = 201; // RR
        rr.writeUInt16BE(7, 2); // 8 words - 1
        rr.writeUInt32BE(receiverSsrc, 4);
        rr.writeUInt32BE(senderSsrc, 8);
        rr.writeUInt32BE(0, 12); // fraction lost 0, cumulative 0
        rr.writeUInt32BE(0, 16); // extended highest sequence number
        rr.writeUInt32BE(0, 20); // jitter
        rr.writeUInt32BE(lsr, 24);
        rr.writeUInt32BE(1, 28); // DLSR: 1/65536 s
        setTimeout(() => endpoint.send(rr, sfuPort), delayMs);
      }
      offset += len;
    }
  });
}

/**
 * Speech-like audio levels: syllables of varying loudness with short pauses
 * (a constant level counts as background noise for dominant speaker
 * detection).
 */
export const speechLevel = (frame: number): number =>
  frame % 25 < 18 ? 10 + Math.round(20 * Math.abs(Math.sin(frame / 3))) : 100;

/** Polls `condition` until it is true or `timeoutMs` passes. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves with the arguments of the next `event` (or rejects after timeoutMs). */
export function nextEvent<Events extends EventMap, E extends keyof Events & string>(
  emitter: TypedEmitter<Events>,
  event: E,
  timeoutMs = 10_000,
): Promise<Events[E]> {
  return new Promise<Events[E]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${event}"`)), timeoutMs);
    emitter.once(event, (...args: Events[E]) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
