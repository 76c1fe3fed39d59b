/**
 * Key frame requests to a client's video producer are spaced by `keyFrameRequestDelayMs`
 * (GEO_SFU_KEYFRAME_REQUEST_DELAY_MS): libwebrtc senders ignore a request within 300 ms of the
 * last one they honoured, so a second viewer's request sent 100 ms after the first would be lost
 * and that viewer would wait for mediasoup's retry a second later. With the delay, the request is
 * held and sent when it ends — once, not dropped. Real worker, real UDP: a sender that answers
 * each PLI with a VP8 key frame, as a browser does.
 */
import { afterEach, expect, it } from 'vitest';
import { RoomRouter, WorkerPool } from '../../sfu/index.ts';
import { publishVp8AnsweringPlis, sleep, UdpEndpoint, waitUntil } from './helpers/rtp.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** PLI arrival times (ms) at a publisher that sends VP8 at 30 fps, a key frame only when asked. */
async function publishAndWatchRequests(keyFrameRequestDelayMs: number): Promise<number[]> {
  const pool = await WorkerPool.create({ numWorkers: 1 });
  cleanups.push(() => pool.close());
  const rooms = new RoomRouter({ pool, spread: false, keyFrameRequestDelayMs });
  cleanups.push(() => rooms.close());
  const publisher = await rooms.join('kf', 'publisher');
  const { producer, plis, close } = await publishVp8AnsweringPlis(publisher, 4242);
  cleanups.push(close);

  // Two viewers, the second resumed 100 ms after the first one's request reached the publisher.
  const viewer = async (name: string) => {
    const peer = await rooms.join('kf', name, { rtpCapabilities: publisher.room.rtpCapabilities });
    const receiver = await UdpEndpoint.open();
    cleanups.push(() => receiver.close());
    const t = await peer.createPlainTransport();
    await peer.connectTransport(t.id, { ip: '127.0.0.1', port: receiver.port });
    const consumer = await peer.consume({ transportId: t.id, producerId: producer.id });
    return () => peer.resumeConsumer(consumer.id);
  };
  const [resumeFirst, resumeSecond] = [await viewer('first'), await viewer('second')];
  const before = plis.length;
  await resumeFirst();
  await waitUntil(() => plis.length > before, 5_000, 'the first viewer’s key frame request');
  await sleep(100);
  await resumeSecond();
  await waitUntil(() => plis.length > before + 1, 5_000, 'the second viewer’s key frame request');
  return plis.slice(before, before + 2);
}

it('a second viewer’s key frame request within the delay is sent when the delay ends, not at once and not dropped', async () => {
  const delayMs = 350;
  const [first, second] = await publishAndWatchRequests(delayMs);
  const gap = second! - first!;
  const [undelayedFirst, undelayedSecond] = await publishAndWatchRequests(0);
  console.log(`key frame requests to the publisher: ${gap.toFixed(0)} ms apart with a ${delayMs} ms delay, ${(undelayedSecond! - undelayedFirst!).toFixed(0)} ms apart without`);
  // Never two requests within libwebrtc's 300 ms (the delay counts from the first request, sent
  // just before its PLI arrived).
  expect(gap).toBeGreaterThanOrEqual(300);
});
