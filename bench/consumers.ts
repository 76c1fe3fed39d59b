import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { types as ms } from 'mediasoup';
import { DEFAULT_MEDIA_CODECS } from '../sfu/index.ts';
import { loadMediasoup } from '../sfu/worker-binary.ts';
import { rtpPacket, vp8Payload, VP8_PT, vp8RtpParameters } from '../test/sfu/helpers/rtp.ts';
import { receiverFeedback, SrtcpSender } from './srtcp-feedback.ts';

/**
 * Consumers one mediasoup worker can feed: one VP8 producer at a stated bitrate, consumers whose
 * packets are SRTP-encrypted (as on a WebRTC downlink) and go to a discard port, added in steps until the worker's own CPU (getResourceUsage)
 * passes 85%; the figure is interpolated at 85%. mediasoup's documentation suggests about 500
 * per core as a guide; the target here is ≥ 400.
 *
 * With `feedback`, each downlink also sends what a real receiver sends back, SRTCP-protected
 * (./srtcp-feedback.ts): every 100 ms (the cadence of libwebrtc's transport feedback) a receiver
 * report with a block per consumer and a REMB, and every second a generic NACK per consumer. It is
 * sent from the discard port (the address the transport is connected to: a plain transport takes
 * RTCP from there only). Transport-wide congestion control feedback is not emulated: it needs the
 * arrival times of packets these receivers never read.
 */
export interface ConsumersBenchResult {
  /** The producer's measured inbound bitrate over the run. */
  bitrateKbps: number;
  consumersAt85: number | null;
  steps: Array<{ consumers: number; cpu: number }>;
  /** With `feedback`: SRTCP packets sent, and NACKs the consumers counted (proof the worker took the feedback). */
  feedback: { packets: number; nacksCounted: number } | null;
}

const SSRC = 0x0bec0001;
const PACKET_PAYLOAD = 1_100;

/**
 * A UDP port bound by a process that never reads it: the kernel drops what overflows, no ICMP
 * errors. Lines `<port> <hex>` on its stdin are sent from it to 127.0.0.1:<port>.
 */
async function discardPort(): Promise<{ port: number; proc: ChildProcess }> {
  const script = [
    'import socket,sys',
    's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)',
    "s.bind(('127.0.0.1',0))",
    'print(s.getsockname()[1],flush=True)',
    'for line in sys.stdin:',
    '  port,data=line.split()',
    "  s.sendto(bytes.fromhex(data),('127.0.0.1',int(port)))",
  ].join('\n');
  const proc = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    proc.once('error', reject);
  });
  return { port, proc };
}

async function workerCpuMs(worker: ms.Worker): Promise<number> {
  const u = await worker.getResourceUsage();
  return u.ru_utime + u.ru_stime;
}

/** `budgetMs`: stop adding consumers after this long (default: 45 s with `quick`, none otherwise). */
export async function benchConsumers(opts: { quick: boolean; bitrateKbps?: number; budgetMs?: number; feedback?: boolean }): Promise<ConsumersBenchResult> {
  const budgetMs = opts.budgetMs ?? (opts.quick ? 45_000 : Number.POSITIVE_INFINITY);
  const bitrateKbps = opts.bitrateKbps ?? 1_000;
  const mediasoup = await loadMediasoup();
  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  const router = await worker.createRouter({ mediaCodecs: [...DEFAULT_MEDIA_CODECS] });
  const sink = await discardPort();
  const sender = createSocket('udp4');
  await new Promise<void>((r) => sender.bind(0, '127.0.0.1', () => r()));
  const steps: ConsumersBenchResult['steps'] = [];
  let measuredKbps = 0;
  let feedback: ConsumersBenchResult['feedback'] = null;
  let feedbackTimer: NodeJS.Timeout | undefined;
  try {
    const input = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
    const producer = await input.produce({ kind: 'video', rtpParameters: vp8RtpParameters(SSRC) });
    // Packets of ~1.1 kB at the rate that gives the bitrate; a keyframe every second.
    const packetsPerSecond = Math.round((bitrateKbps * 1000) / 8 / (PACKET_PAYLOAD + 40));
    let seq = 0;
    let frame = 0;
    let sent = 0;
    const started = performance.now();
    const timer = setInterval(() => {
      // Send what the schedule owes by now, so timer jitter does not change the bitrate.
      const due = Math.floor(((performance.now() - started) / 1000) * packetsPerSecond);
      for (; sent < due; sent++) {
        const keyframe = frame % packetsPerSecond === 0;
        const descriptor = vp8Payload({ keyframe, pictureId: frame & 0x7fff, tl0PicIdx: frame & 0xff });
        const packet = rtpPacket({ payloadType: VP8_PT, sequenceNumber: seq++, timestamp: frame * 900, ssrc: SSRC, marker: true }, Buffer.concat([descriptor, Buffer.alloc(PACKET_PAYLOAD - descriptor.length)]));
        sender.send(packet, input.tuple.localPort, '127.0.0.1');
        frame++;
      }
    }, 10);

    const consumerCaps = router.rtpCapabilities;
    const transports: ms.PlainTransport[] = [];
    const made: ms.Consumer[] = [];
    const downlinks: Array<{ transport: ms.PlainTransport; srtcp: SrtcpSender; ssrc: number; mediaSsrcs: number[] }> = [];
    let feedbackPackets = 0;
    let tick = 0;
    feedbackTimer = opts.feedback
      ? setInterval(() => {
          tick++;
          for (const d of downlinks) {
            const packet = d.srtcp.protect(receiverFeedback(d.ssrc, d.mediaSsrcs, bitrateKbps * 1000, tick % 10 === 0 ? tick & 0xffff : undefined));
            sink.proc.stdin!.write(`${d.transport.tuple.localPort} ${packet.toString('hex')}\n`);
            feedbackPackets++;
          }
        }, 100)
      : undefined;
    const step = opts.quick ? 100 : 50;
    const settleMs = opts.quick ? 1_000 : 3_000;
    const maxConsumers = opts.quick ? 1_500 : 3_000;
    let consumers = 0;
    while (consumers < maxConsumers && performance.now() - started < budgetMs) {
      for (let i = 0; i < step; i++) {
        // Ten consumers share a transport (a participant's downlink carries many streams).
        if (consumers % 10 === 0) {
          // SRTP like a WebRTC downlink: encryption is a large part of a consumer's cost.
          const t = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false, enableSrtp: true, srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80' });
          const keyBase64 = randomBytes(30).toString('base64');
          await t.connect({ ip: '127.0.0.1', port: sink.port, srtpParameters: { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80', keyBase64 } });
          transports.push(t);
          downlinks.push({ transport: t, srtcp: new SrtcpSender(keyBase64), ssrc: randomBytes(4).readUInt32BE(0), mediaSsrcs: [] });
        }
        const consumer = await transports.at(-1)!.consume({ producerId: producer.id, rtpCapabilities: consumerCaps, paused: false });
        made.push(consumer);
        downlinks.at(-1)!.mediaSsrcs.push(consumer.rtpParameters.encodings![0]!.ssrc!);
        consumers++;
      }
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      const c0 = await workerCpuMs(worker);
      await new Promise((r) => setTimeout(r, settleMs));
      const cpu = (await workerCpuMs(worker)) - c0;
      const share = cpu / (performance.now() - t0);
      steps.push({ consumers, cpu: Math.round(share * 1000) / 1000 });
      if (share >= 0.85) break;
    }
    clearInterval(timer);
    clearInterval(feedbackTimer);
    if (opts.feedback) {
      // The first downlinks' consumers, which got feedback for the whole run.
      let nacksCounted = 0;
      for (const consumer of made.slice(0, 50)) for (const s of await consumer.getStats()) if (s.type === 'outbound-rtp') nacksCounted += s.nackCount;
      feedback = { packets: feedbackPackets, nacksCounted };
    }
    const stats = await producer.getStats();
    const received = stats.reduce((n, x) => n + x.byteCount, 0);
    measuredKbps = Math.round((received * 8) / (performance.now() - started));
  } finally {
    clearInterval(feedbackTimer);
    sender.close();
    sink.proc.kill();
    worker.close();
  }
  return { bitrateKbps: measuredKbps, consumersAt85: interpolate(steps, 0.85), steps, feedback };
}

function interpolate(steps: ConsumersBenchResult['steps'], level: number): number | null {
  const i = steps.findIndex((s) => s.cpu >= level);
  if (i < 0) return null;
  if (i === 0) return Math.round((steps[0]!.consumers * level) / steps[0]!.cpu);
  const a = steps[i - 1]!;
  const b = steps[i]!;
  return Math.round(a.consumers + ((level - a.cpu) * (b.consumers - a.consumers)) / (b.cpu - a.cpu));
}
