/**
 * Smoke check for the cached mediasoup worker: loads mediasoup through
 * sfu/worker-binary.ts, starts one worker, creates a router and a WebRTC
 * transport on 127.0.0.1 (ephemeral port) and closes everything.
 *
 *   npx tsx infra/mediasoup/check-worker.ts
 *
 * Exit code 0 and one line on stdout (binary path, mediasoup version, pid).
 */
import { loadMediasoup, loadedWorkerBinary } from '../../sfu/worker-binary.ts';

async function main(): Promise<void> {
  const mediasoup = await loadMediasoup();
  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  try {
    const router = await worker.createRouter({
      mediaCodecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }],
    });
    const transport = await router.createWebRtcTransport({
      listenInfos: [{ protocol: 'udp', ip: '127.0.0.1', port: 0 }],
    });
    transport.close();
    router.close();
    process.stdout.write(
      `mediasoup-worker ok: ${loadedWorkerBinary()} (mediasoup ${mediasoup.version}, pid ${worker.pid})\n`,
    );
  } finally {
    worker.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`mediasoup-worker check failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
