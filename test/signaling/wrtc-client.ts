/**
 * A real WebRTC client for the signaling tests, run as a CHILD process (wrtc has been seen to
 * crash at process exit): `node --import tsx test/signaling/wrtc-client.ts` with
 * SIGNALING_URL and JOIN_TOKEN in the environment (PUBLISH=0 to only consume).
 *
 * It joins with mediasoup-client (Chrome111 handler on @roamhq/wrtc's RTCPeerConnection),
 * publishes a synthetic 320×240 15 fps video track (RTCVideoSource) and a 48 kHz audio track
 * (RTCAudioSource), consumes every other producer, and writes JSON lines on stdout:
 * `{type:'welcome'|'joined'|'produced'|'consuming'|'event'|'stats'|'left'|'error', ...}`.
 * `stats` (every 250 ms) sums the inbound-rtp stats of its consumers: framesDecoded, packets
 * received per kind. Commands come as JSON lines on stdin: `{cmd:'pause'|'resume'}` (video
 * producer), `{cmd:'leave'}`, `{cmd:'exit'}`.
 */
import { createInterface } from 'node:readline';
import wrtc from '@roamhq/wrtc';
import { Device } from 'mediasoup-client';
import type { types as mc } from 'mediasoup-client';
import { io } from 'socket.io-client';
import { type Ack, PROTOCOL_VERSION, type ProducerInfoMessage, type RequestName, type ResponseData } from '../../shared/signaling.ts';

const startedAt = performance.now();
const out = (msg: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...msg, t: Math.round(performance.now() - startedAt) })}\n`);

// mediasoup-client's handlers use the browser globals.
Object.assign(globalThis, {
  RTCPeerConnection: wrtc.RTCPeerConnection,
  RTCSessionDescription: wrtc.RTCSessionDescription,
  RTCIceCandidate: wrtc.RTCIceCandidate,
  RTCRtpSender: wrtc.RTCRtpSender,
  RTCRtpReceiver: wrtc.RTCRtpReceiver,
  RTCRtpTransceiver: wrtc.RTCRtpTransceiver,
  MediaStream: wrtc.MediaStream,
  MediaStreamTrack: wrtc.MediaStreamTrack,
});

const url = process.env.SIGNALING_URL ?? '';
const joinToken = process.env.JOIN_TOKEN ?? '';
const publish = process.env.PUBLISH !== '0';

const socket = io(url, { auth: { protocolVersion: PROTOCOL_VERSION, token: joinToken }, transports: ['websocket'], reconnection: false });

async function req<N extends RequestName>(name: N, payload: unknown): Promise<ResponseData[N]> {
  const reply = (await socket.timeout(10_000).emitWithAck(name, payload)) as Ack<ResponseData[N]>;
  if (!reply.ok) throw new Error(`${name}: ${reply.error.code} ${reply.error.message}`);
  return reply.data;
}

const timers: NodeJS.Timeout[] = [];
const consumers = new Map<string, mc.Consumer>();
let videoProducer: mc.Producer | undefined;
let recvTransport: mc.Transport | undefined;
let firstFrameAt: number | null = null;

function synthesize(): MediaStreamTrack[] {
  const width = 320;
  const height = 240;
  const video = new wrtc.nonstandard.RTCVideoSource();
  const frame = new Uint8Array(width * height * 1.5);
  let n = 0;
  timers.push(
    setInterval(() => {
      // A moving gradient, so the encoder has something to encode.
      n++;
      for (let i = 0; i < width * height; i++) frame[i] = (i + n * 4) & 0xff;
      frame.fill(128, width * height);
      video.onFrame({ width, height, data: frame });
    }, 1000 / 15),
  );
  const audio = new wrtc.nonstandard.RTCAudioSource();
  const samples = new Int16Array(480);
  let phase = 0;
  timers.push(
    setInterval(() => {
      for (let i = 0; i < samples.length; i++) samples[i] = Math.round(8_000 * Math.sin((phase += (2 * Math.PI * 440) / 48_000)));
      audio.onData({ samples, sampleRate: 48_000, bitsPerSample: 16, channelCount: 1, numberOfFrames: samples.length });
    }, 10),
  );
  return [video.createTrack() as unknown as MediaStreamTrack, audio.createTrack() as unknown as MediaStreamTrack];
}

async function consume(device: Device, info: ProducerInfoMessage): Promise<void> {
  if (!recvTransport || consumers.has(info.producerId)) return;
  const c = await req('consume', { transportId: recvTransport.id, producerId: info.producerId });
  const consumer = await recvTransport.consume({ id: c.consumerId, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters as unknown as mc.RtpParameters });
  consumers.set(info.producerId, consumer);
  await req('resumeConsumer', { consumerId: c.consumerId });
  out({ type: 'consuming', producerId: info.producerId, peerId: info.peerId, kind: c.kind, producerPaused: c.producerPaused });
  void device;
}

async function sampleStats(): Promise<void> {
  let framesDecoded = 0;
  const packets = { audio: 0, video: 0 };
  // @roamhq/wrtc 0.10 has no RTCRtpReceiver.getStats() (consumer.getStats() always rejects):
  // the recv transport's RTCPeerConnection stats carry the same inbound-rtp figures.
  if (recvTransport && consumers.size > 0) {
    const report = await recvTransport.getStats().catch(() => null);
    report?.forEach((s: { type: string; kind?: string; framesDecoded?: number; packetsReceived?: number }) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') {
        framesDecoded += s.framesDecoded ?? 0;
        packets.video += s.packetsReceived ?? 0;
      } else if (s.kind === 'audio') packets.audio += s.packetsReceived ?? 0;
    });
  }
  if (framesDecoded > 0 && firstFrameAt === null) firstFrameAt = performance.now() - startedAt;
  out({ type: 'stats', framesDecoded, packets, consumers: consumers.size, firstFrameMs: firstFrameAt === null ? null : Math.round(firstFrameAt) });
}

async function main(): Promise<void> {
  const welcome = await new Promise<Record<string, unknown>>((resolve, reject) => {
    socket.once('welcome', resolve);
    socket.once('connect_error', (err: Error & { data?: unknown }) => reject(new Error(`connect_error ${JSON.stringify(err.data ?? err.message)}`)));
  });
  out({ type: 'welcome', peerId: welcome.peerId });
  for (const event of ['peerJoined', 'peerLeft', 'newProducer', 'producerClosed', 'producerPaused', 'producerResumed', 'consumerClosed', 'moved', 'quality']) {
    socket.on(event, (msg: unknown) => out({ type: 'event', event, msg }));
  }
  socket.on('disconnect', (reason) => out({ type: 'event', event: 'disconnect', msg: reason }));

  const device = new Device({ handlerName: 'Chrome111' });
  const { rtpCapabilities } = await req('getRouterRtpCapabilities', {});
  await device.load({ routerRtpCapabilities: rtpCapabilities as unknown as mc.RtpCapabilities });
  const joined = await req('join', { rtpCapabilities: device.rtpCapabilities as unknown as Record<string, unknown>, displayName: String(welcome.peerId) });
  out({ type: 'joined', peers: joined.peers.length, producers: joined.producers.length });

  const transportOptions = (t: ResponseData['createWebRtcTransport']) => ({
    id: t.transportId,
    iceParameters: t.iceParameters as unknown as mc.IceParameters,
    iceCandidates: t.iceCandidates as unknown as mc.IceCandidate[],
    // DTLS_ROLE=server: this client is the DTLS server (the SFU the DTLS client).
    dtlsParameters: { ...(t.dtlsParameters as unknown as mc.DtlsParameters), ...(process.env.DTLS_ROLE === 'server' ? { role: 'client' as const } : {}) },
  });
  const connectOn = (transport: mc.Transport) =>
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      req('connectTransport', { transportId: transport.id, dtlsParameters }).then(() => callback(), errback);
    });

  recvTransport = device.createRecvTransport(transportOptions(await req('createWebRtcTransport', { direction: 'recv' })));
  connectOn(recvTransport);
  // Subscribe before publishing, or newProducer events that arrive while this client publishes are lost.
  socket.on('newProducer', (info: ProducerInfoMessage) => void consume(device, info).catch((err: Error) => out({ type: 'error', message: err.message })));

  if (publish) {
    const send = device.createSendTransport(transportOptions(await req('createWebRtcTransport', { direction: 'send' })));
    connectOn(send);
    send.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      if (process.env.DEBUG_RTP) process.stderr.write(`RTP ${JSON.stringify(rtpParameters)}\n`);
      req('produce', { transportId: send.id, kind, rtpParameters, appData })
        .then(({ producerId }) => callback({ id: producerId }), errback);
    });
    const [videoTrack, audioTrack] = synthesize();
    videoProducer = await send.produce({ track: videoTrack! });
    out({ type: 'produced', kind: 'video', producerId: videoProducer.id });
    const audioProducer = await send.produce({ track: audioTrack! });
    out({ type: 'produced', kind: 'audio', producerId: audioProducer.id });
  }

  socket.on('producerClosed', ({ producerId }: { producerId: string }) => {
    consumers.get(producerId)?.close();
    consumers.delete(producerId);
  });
  for (const info of joined.producers) await consume(device, info);
  timers.push(setInterval(() => void sampleStats(), 250));

  const commands = createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const { cmd } = JSON.parse(line) as { cmd: string };
    const run = async () => {
      if (cmd === 'pause' && videoProducer) {
        videoProducer.pause();
        await req('pauseProducer', { producerId: videoProducer.id });
      } else if (cmd === 'resume' && videoProducer) {
        videoProducer.resume();
        await req('resumeProducer', { producerId: videoProducer.id });
      } else if (cmd === 'leave') {
        await req('leave', {});
        out({ type: 'left' });
      } else if (cmd === 'exit') {
        exit(0);
      }
      out({ type: 'done', cmd });
    };
    run().catch((err: Error) => out({ type: 'error', cmd, message: err.message }));
  });
  commands.on('close', () => exit(0));
}

function exit(code: number): never {
  for (const t of timers) clearInterval(t);
  socket.close();
  process.exit(code);
}

main().catch((err: Error) => {
  out({ type: 'error', message: err.stack ?? err.message });
  exit(1);
});
