import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { types as ms } from 'mediasoup';
import { afterAll, expect, it } from 'vitest';
import { receiverFeedback, SrtcpSender } from '../../bench/srtcp-feedback.ts';
import { DEFAULT_MEDIA_CODECS } from '../../sfu/index.ts';
import { loadMediasoup } from '../../sfu/worker-binary.ts';
import { rtpPacket, vp8Payload, VP8_PT, vp8RtpParameters } from '../sfu/helpers/rtp.ts';

/**
 * The consumers benchmark's receiver feedback is only a load if the worker takes it: SRTCP
 * (RFC 3711) protected with the key its plain transport was connected with, from the address it
 * was connected to. A real worker counts the NACKs inside; with another key it drops them all.
 */
let worker: ms.Worker | undefined;
afterAll(() => worker?.close());

it('a mediasoup worker decrypts the SRTCP feedback and counts its NACKs; feedback under another key is dropped', async () => {
  const mediasoup = await loadMediasoup();
  worker = await mediasoup.createWorker({ logLevel: 'error' });
  const router = await worker.createRouter({ mediaCodecs: [...DEFAULT_MEDIA_CODECS] });
  const input = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
  const producer = await input.produce({ kind: 'video', rtpParameters: vp8RtpParameters(0x5eed0001) });
  const receiver = createSocket('udp4');
  await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', () => r()));
  try {
    const nacksOver = async (keyUsed: (connected: string) => string): Promise<number> => {
      const t = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false, enableSrtp: true, srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80' });
      const keyBase64 = randomBytes(30).toString('base64');
      await t.connect({ ip: '127.0.0.1', port: receiver.address().port, srtpParameters: { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80', keyBase64 } });
      const consumer = await t.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities, paused: false });
      // The consumer's stream exists once media flows: a key frame, then feedback about it.
      for (let seq = 0; seq < 3; seq++) {
        const packet = rtpPacket({ payloadType: VP8_PT, sequenceNumber: seq, timestamp: 900, ssrc: 0x5eed0001, marker: seq === 2 }, Buffer.concat([vp8Payload({ keyframe: true, pictureId: 1, tl0PicIdx: 1 }), Buffer.alloc(200)]));
        await new Promise<void>((r) => receiver.send(packet, input.tuple.localPort, '127.0.0.1', () => r()));
      }
      await new Promise((r) => setTimeout(r, 100));
      const srtcp = new SrtcpSender(keyUsed(keyBase64));
      for (let i = 0; i < 5; i++) {
        const packet = srtcp.protect(receiverFeedback(0x1234, [consumer.rtpParameters.encodings![0]!.ssrc!], 1_000_000, 100 + i));
        await new Promise<void>((r) => receiver.send(packet, t.tuple.localPort, '127.0.0.1', () => r()));
      }
      await new Promise((r) => setTimeout(r, 200));
      return (await consumer.getStats()).reduce((n, s) => n + (s.type === 'outbound-rtp' ? s.nackCount : 0), 0);
    };
    const counted = await nacksOver((key) => key);
    const otherKey = await nacksOver(() => randomBytes(30).toString('base64'));
    console.log(`NACKs counted by the consumer: ${counted} of 5 under the connected key, ${otherKey} of 5 under another key`);
    expect(counted).toBe(5);
    expect(otherKey).toBe(0);
  } finally {
    receiver.close();
  }
});
