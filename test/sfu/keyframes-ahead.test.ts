/**
 * RoomRouterOptions.keyFramesAhead (GEO_SFU_KEYFRAMES_AHEAD): a joining client's consumers of
 * video piped from another node get their first key frame asked for when the client's transport
 * is ICE-connected, not once its DTLS handshake has ended, so the key frame crosses the
 * inter-region link during the handshake. Real workers (an origin and an edge, two pools), a real
 * region pipe, real UDP: the publisher is a plain transport that records the PLIs reaching it,
 * and the client does ICE only (a STUN binding request with USE-CANDIDATE, as a browser's
 * nominated check) and never DTLS, so mediasoup's own request at connection never goes.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { RegionPipe, RoomRouter, WorkerPool, type types as ms } from '../../sfu/index.ts';
import { publishVp8AnsweringPlis, sleep, waitUntil } from './helpers/rtp.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * A STUN binding request a controlling ICE agent sends to nominate a pair (RFC 8445): USERNAME,
 * PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY under the server's password, FINGERPRINT.
 */
function nominatingBindingRequest(ice: ms.IceParameters): Buffer {
  const transactionId = randomBytes(12);
  const attribute = (type: number, value: Buffer) => {
    const out = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
    out.writeUInt16BE(type, 0);
    out.writeUInt16BE(value.length, 2);
    value.copy(out, 4);
    return out;
  };
  const header = (bodyLength: number) => {
    const out = Buffer.alloc(20);
    out.writeUInt16BE(0x0001, 0);
    out.writeUInt16BE(bodyLength, 2);
    out.writeUInt32BE(0x2112a442, 4);
    transactionId.copy(out, 8);
    return out;
  };
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e001eff);
  let body = Buffer.concat([
    attribute(0x0006, Buffer.from(`${ice.usernameFragment}:client`)),
    attribute(0x0024, priority),
    attribute(0x802a, randomBytes(8)),
    attribute(0x0025, Buffer.alloc(0)),
  ]);
  // Each over the message so far, with the length already counting the attribute itself.
  const integrity = createHmac('sha1', ice.password).update(Buffer.concat([header(body.length + 24), body])).digest();
  body = Buffer.concat([body, attribute(0x0008, integrity)]);
  const fingerprint = Buffer.alloc(4);
  fingerprint.writeUInt32BE((crc32(Buffer.concat([header(body.length + 8), body])) ^ 0x5354554e) >>> 0);
  body = Buffer.concat([body, attribute(0x8028, fingerprint)]);
  return Buffer.concat([header(body.length), body]);
}

/**
 * Publishes VP8 on the origin, pipes it to the edge, and has a client on the edge consume it over
 * a WebRTC transport and complete ICE only. Returns the PLIs that reached the publisher after the
 * client's transport was ICE-connected, within `watchMs`.
 */
async function plisAfterIce(keyFramesAhead: boolean, watchMs: number): Promise<{ plis: number; iceState: string; dtlsState: string }> {
  const originPool = await WorkerPool.create({ numWorkers: 1 });
  cleanups.push(() => originPool.close());
  const edgePool = await WorkerPool.create({ numWorkers: 1 });
  cleanups.push(() => edgePool.close());
  const origin = new RoomRouter({ pool: originPool, spread: false });
  cleanups.push(() => origin.close());
  const edge = new RoomRouter({ pool: edgePool, spread: false, keyFramesAhead });
  cleanups.push(() => edge.close());

  const publisher = await origin.join('kf', 'publisher');
  const { producer, plis, close } = await publishVp8AnsweringPlis(publisher, 5151);
  cleanups.push(close);

  // The client joins the edge, which pipes the origin's producer in (what region-agent/cascade/ does over HTTP).
  const viewer = await edge.join('kf', 'viewer', { rtpCapabilities: publisher.room.rtpCapabilities });
  const here = { nodeId: 'edge-1', region: 'apac' };
  const there = { nodeId: 'origin-1', region: 'us-east' };
  const fromOrigin = await RegionPipe.create(origin.getRoom('kf')!, { local: there, remote: here, listenIp: '127.0.0.1', enableSrtp: false });
  const atEdge = await RegionPipe.create(edge.getRoom('kf')!, { local: here, remote: there, listenIp: '127.0.0.1', enableSrtp: false });
  cleanups.push(() => fromOrigin.close());
  cleanups.push(() => atEdge.close());
  await fromOrigin.connect(atEdge.localEndpoint);
  await atEdge.connect(fromOrigin.localEndpoint);
  await atEdge.importState(await fromOrigin.exportState());
  await waitUntil(() => edge.getRoom('kf')!.producers.has(producer.id), 5_000, 'the producer piped to the edge');

  const recv = await viewer.createWebRtcTransport();
  const consumer = await viewer.consume({ transportId: recv.id, producerId: producer.id });
  await viewer.resumeConsumer(consumer.id);
  // Whatever the pipe's own set-up asked for has been answered before the client's ICE.
  await sleep(500);
  const before = plis.length;

  const udp = recv.iceCandidates.find((c) => c.protocol === 'udp')!;
  const client = createSocket('udp4');
  cleanups.push(() => client.close());
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  const connected = new Promise<void>((resolve) => recv.on('icestatechange', (state) => (state === 'connected' || state === 'completed') && resolve()));
  client.send(nominatingBindingRequest(recv.iceParameters), udp.port, udp.address ?? udp.ip);
  await Promise.race([connected, sleep(5_000)]);
  await sleep(watchMs);
  return { plis: plis.length - before, iceState: recv.iceState, dtlsState: recv.dtlsState };
}

it('asks the origin for a key frame when the client is ICE-connected, before DTLS; without the option nothing is asked until DTLS', async () => {
  const ahead = await plisAfterIce(true, 1_500);
  const atConnect = await plisAfterIce(false, 1_500);
  console.log(`PLIs at the publisher in the 1.5 s after the edge client's ICE (DTLS never done): ${ahead.plis} with keyFramesAhead, ${atConnect.plis} without`);
  for (const run of [ahead, atConnect]) {
    expect(['connected', 'completed']).toContain(run.iceState);
    expect(run.dtlsState).not.toBe('connected');
  }
  expect(ahead.plis).toBeGreaterThanOrEqual(1);
  expect(atConnect.plis).toBe(0);
});
