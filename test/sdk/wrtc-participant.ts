/**
 * A real WebRTC participant built on the SDK, run as a CHILD process (wrtc has been seen to crash
 * at process exit): `node --import tsx test/sdk/wrtc-participant.ts` with ROUTER_URL, ROOM_ID,
 * PARTICIPANT_ID, GRANT and LATENCIES (JSON, optional; else it probes) in the environment,
 * PUBLISH=0 to only consume, SIMULCAST=0 for a single video encoding. ALLOCATION (JSON of an
 * /allocate answer) skips /allocate and joins it as given (tests of an agent without a router).
 *
 * The SDK gets @roamhq/wrtc injected (`webrtc: wrtc`, Chrome111 handler); the participant
 * publishes a synthetic 320×240 15 fps video track and a 48 kHz audio track and writes JSON lines:
 * `{ type: 'joined' | 'event' | 'stats' | 'error' | 'left', t, ... }`. `stats` (every 250 ms)
 * sums the inbound-rtp of what it receives: framesDecoded, packets per kind (and `lost` per kind:
 * packetsLost, and `nacks`: the video NACKs it sent), the edge and its mode (sfu, p2p),
 * and `received`: per peer, the video frames and audio chunks its sinks rendered so far.
 * Every remote track also gets a wrtc sink: `{ type: 'gap', peerId, kind, ms }` is written when a
 * peer's video frames or audio chunks (from any of its tracks, old or new edge alike) resume after
 * more than GAP_LOG_MS without any: the media gap the participant actually sees.
 * stdin commands (JSON lines): `{ cmd: 'pause' | 'resume' | 'leave' | 'exit' }` (pause/resume: the video).
 */
import { createInterface } from 'node:readline';
import wrtc from '@roamhq/wrtc';
import { type Allocation, GeoSfuClient, type RoomEvents, type RoomListeners } from '../../sdk/index.ts';

const startedAt = performance.now();
const out = (msg: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...msg, t: Math.round(performance.now() - startedAt) })}\n`);
const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const timers: NodeJS.Timeout[] = [];
const GAP_LOG_MS = 150;
/** Live sinks by producer id, and when each peer's last video frame / audio chunk arrived (ms since start). */
const sinks = new Map<string, { stop(): void }>();
const lastMedia = new Map<string, { video: number | null; audio: number | null }>();
/** Video frames and audio chunks rendered, by peer (whatever edge or track they came on). */
const received = new Map<string, { video: number; audio: number }>();

function watch(remote: RoomEvents['trackAdded']): void {
  sinks.get(remote.producerId)?.stop();
  const onMedia = () => {
    const now = performance.now() - startedAt;
    const last = lastMedia.get(remote.peerId) ?? { video: null, audio: null };
    const previous = last[remote.kind];
    if (previous !== null && now - previous > GAP_LOG_MS) out({ type: 'gap', peerId: remote.peerId, kind: remote.kind, ms: Math.round(now - previous) });
    last[remote.kind] = now;
    lastMedia.set(remote.peerId, last);
    const counts = received.get(remote.peerId) ?? { video: 0, audio: 0 };
    counts[remote.kind]++;
    received.set(remote.peerId, counts);
  };
  if (remote.kind === 'video') {
    const sink = new wrtc.nonstandard.RTCVideoSink(remote.track as never);
    sink.onframe = onMedia;
    sinks.set(remote.producerId, sink);
  } else {
    const sink = new wrtc.nonstandard.RTCAudioSink(remote.track as never);
    sink.ondata = onMedia;
    sinks.set(remote.producerId, sink);
  }
}

function synthesize(): MediaStreamTrack[] {
  const width = 320;
  const height = 240;
  const video = new wrtc.nonstandard.RTCVideoSource();
  const frame = new Uint8Array(width * height * 1.5);
  let n = 0;
  timers.push(
    setInterval(() => {
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

async function main(): Promise<void> {
  const client = new GeoSfuClient({ routerUrl: env('ROUTER_URL'), webrtc: wrtc, handlerName: 'Chrome111' });
  const allocate = async () => {
    const latencies = process.env.LATENCIES ? (JSON.parse(process.env.LATENCIES) as Record<string, number>) : (await client.probeRegions({ samples: 5 })).latencies;
    return client.allocate(env('ROOM_ID'), env('PARTICIPANT_ID'), { grant: env('GRANT'), latencies });
  };
  const allocation = process.env.ALLOCATION ? (JSON.parse(process.env.ALLOCATION) as Allocation) : await allocate();
  const [video, audio] = process.env.PUBLISH === '0' ? [] : synthesize();
  const tracks = video && audio ? [{ track: video, options: process.env.SIMULCAST === '0' ? { encodings: null } : {} }, audio] : [];
  const on: RoomListeners = {};
  for (const event of ['participantJoined', 'participantLeft', 'trackAdded', 'trackRemoved', 'trackPaused', 'moved', 'reconnecting', 'reconnected', 'transportState', 'error', 'closed'] as const) {
    on[event] = (payload: RoomEvents[typeof event]) => {
      const added = payload as RoomEvents['trackAdded'];
      const msg = event === 'trackAdded' ? { peerId: added.peerId, producerId: added.producerId, kind: added.kind, region: added.region } : event === 'error' ? { message: (payload as RoomEvents['error']).error.message } : payload;
      out({ type: 'event', event, msg });
      if (event === 'trackAdded') watch(payload as RoomEvents['trackAdded']);
      if (event === 'trackRemoved') {
        const { producerId } = payload as RoomEvents['trackRemoved'];
        sinks.get(producerId)?.stop();
        sinks.delete(producerId);
      }
    };
  }
  const room = await client.join({ allocation, tracks, displayName: env('PARTICIPANT_ID'), on });
  const videoId = room.localProducers.find((p) => p.kind === 'video')?.localId;
  out({ type: 'joined', edge: room.edge, participants: room.participants, permissions: room.permissions });
  let firstFrameAt: number | null = null;
  timers.push(
    setInterval(() => {
      void (async () => {
        let framesDecoded = 0;
        const packets = { audio: 0, video: 0 };
        const lost = { audio: 0, video: 0 };
        let nacks = 0;
        // @roamhq/wrtc 0.10 has no RTCRtpReceiver.getStats(): the recv transport's peer connection
        // stats (in P2P, every direct link's).
        if (room.remoteTracks.length > 0) {
          const { recv: report } = await room.getStats();
          report?.forEach((s: { type: string; kind?: string; framesDecoded?: number; packetsReceived?: number; packetsLost?: number; nackCount?: number }) => {
            if (s.type !== 'inbound-rtp') return;
            if (s.kind === 'video') {
              framesDecoded += s.framesDecoded ?? 0;
              packets.video += s.packetsReceived ?? 0;
              lost.video += s.packetsLost ?? 0;
              nacks += s.nackCount ?? 0;
            } else if (s.kind === 'audio') {
              packets.audio += s.packetsReceived ?? 0;
              lost.audio += s.packetsLost ?? 0;
            }
          });
        }
        if (framesDecoded > 0 && firstFrameAt === null) firstFrameAt = performance.now() - startedAt;
        const regions = Object.fromEntries(room.participants.map((p) => [p.peerId, p.region]));
        out({ type: 'stats', framesDecoded, packets, lost, nacks, received: Object.fromEntries(received), consumers: room.consumers.length, edge: room.edge.nodeId, mode: room.edge.mode, regions, firstFrameMs: firstFrameAt === null ? null : Math.round(firstFrameAt) });
      })();
    }, 250),
  );
  const commands = createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const { cmd } = JSON.parse(line) as { cmd: string };
    if (cmd === 'leave') void room.leave().then(() => out({ type: 'left' }));
    else if ((cmd === 'pause' || cmd === 'resume') && videoId) void room.setPaused(videoId, cmd === 'pause').then(() => out({ type: 'done', cmd }));
    else if (cmd === 'exit') exit(0);
  });
  commands.on('close', () => exit(0));
}

function exit(code: number): never {
  for (const t of timers) clearInterval(t);
  for (const sink of sinks.values()) sink.stop();
  process.exit(code);
}

main().catch((err: Error) => {
  out({ type: 'error', message: err.stack ?? err.message });
  exit(1);
});
