/**
 * Time to first frame (issue #21): in real Chromium pages on the embedded default, two pages
 * (us-east, eu-west) publish in a room; a third (apac) clicks Join on the demo page, and the time
 * from the click until it has presented a video frame from both others is measured, with where
 * the time went: the page's own marks from an init script — /allocate answered, the signaling
 * socket opened, `welcome`, the answers to getRouterRtpCapabilities, join, the transports and the
 * consumes (acks matched to requests on the socket.io wire), the receiving peer connection
 * connected (ICE + DTLS), and the first frame of each remote video (requestVideoFrameCallback).
 * Regions on loopback (no WAN emulation) and with the sample WAN profile (inter-region delays on
 * the agents' links and on the cascade's media), each with the joiner's edge opening the room at
 * the join and ahead of it (GEO_SFU_CASCADE_PREWARM_MS 0 and its default), side by side.
 */
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchEmbedded, type Embedded } from '../infra/embedded/launcher.ts';
import { interRegionRtt, readWanProfile } from '../infra/embedded/wan-profile.ts';
import { loadConfig } from '../shared/config/index.ts';
import { waitHealthy } from '../test/sdk/helpers.ts';
import { DEFAULT_REGIONS } from '../shared/regions.ts';
import { joinDemoPage, launchChromium, MEDIA_ARGS, prepareWeb, ROOT } from '../test/web/browser.ts';

const PUBLISHERS = ['us-east', 'eu-west'] as const;
const JOINER = 'apac';
const SAMPLE_PROFILE = join(ROOT, 'infra/embedded/sample-wan-profile.json');

/** The joiner's marks, ms after its click. */
export interface JoinTimeline {
  allocated: number;
  socketOpen: number;
  welcome: number;
  capabilities: number;
  joined: number;
  transports: number;
  consumed: number;
  connected: number;
  /** The first remote video packet received and the first remote frame decoded (either publisher). */
  videoPacket: number;
  videoDecoded: number;
  /** First frame presented from each publisher, and the later of the two. */
  firstFrames: Record<string, number>;
  firstFrameFromAll: number;
}

export interface FirstFrameCase {
  name: string;
  wan: boolean;
  /** Whether the joiner's edge opened the room ahead of the join (GEO_SFU_CASCADE_PREWARM_MS). */
  openedAhead: boolean;
  /** The largest inter-region RTT between the joiner's edge and a publisher's edge (0 on loopback). */
  largestRttMs: number;
  goalMs: number;
  joins: JoinTimeline[];
  /** Medians over the joins, per mark. */
  median: Omit<JoinTimeline, 'firstFrames'>;
}

export interface FirstFrameResult {
  joinsPerCase: number;
  cases: FirstFrameCase[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchFirstFrame(opts: { quick: boolean }): Promise<FirstFrameResult> {
  prepareWeb();
  const joinsPerCase = opts.quick ? 1 : 5;
  const browser = await launchChromium(MEDIA_ARGS);
  const cases: FirstFrameCase[] = [];
  try {
    // `--quick` measures only the rooms opened ahead (the goal's case); the full run also shows what opening ahead buys.
    const variants = [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const;
    for (const [wan, openedAhead] of variants.filter(([, ahead]) => ahead || !opts.quick)) {
      const env = { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_PROBE_INTERVAL_MS: '250', ...(openedAhead ? {} : { GEO_SFU_CASCADE_PREWARM_MS: '0' }) };
      const config = loadConfig({ ...env, ...(wan ? { GEO_SFU_WAN_PROFILE: SAMPLE_PROFILE } : {}) });
      const profile = wan ? readWanProfile(SAMPLE_PROFILE, DEFAULT_REGIONS.map((r) => r.id)) : null;
      const largestRttMs = profile ? Math.max(...PUBLISHERS.map((p) => interRegionRtt(profile, JOINER, p) ?? 0)) : 0;
      // The processes' output, for the error when the cluster does not come up.
      const output: string[] = [];
      const embedded = await launchEmbedded({ config, fixedPorts: false, pipeRelays: wan, env, onOutput: (name, line) => output.push(`[${name}] ${line}`) });
      try {
        await waitHealthy(embedded, output);
        const joins: JoinTimeline[] = [];
        for (let i = 0; i < joinsPerCase; i++) joins.push(await measureJoin(browser, embedded, `first-frame-${wan ? 'wan' : 'loopback'}-${openedAhead ? 'ahead' : 'at-join'}-${i}`));
        const m = (pick: (j: JoinTimeline) => number) => median(joins.map(pick));
        cases.push({
          name: `${wan ? 'with the sample WAN profile' : 'on loopback'}, room opened ${openedAhead ? 'ahead of the join' : 'at the join'}`,
          wan,
          openedAhead,
          largestRttMs,
          goalMs: 1_000 + largestRttMs,
          joins,
          median: {
            allocated: m((j) => j.allocated),
            socketOpen: m((j) => j.socketOpen),
            welcome: m((j) => j.welcome),
            capabilities: m((j) => j.capabilities),
            joined: m((j) => j.joined),
            transports: m((j) => j.transports),
            consumed: m((j) => j.consumed),
            connected: m((j) => j.connected),
            videoPacket: m((j) => j.videoPacket),
            videoDecoded: m((j) => j.videoDecoded),
            firstFrameFromAll: m((j) => j.firstFrameFromAll),
          },
        });
      } finally {
        await embedded.close();
      }
    }
  } finally {
    await browser.close();
  }
  return { joinsPerCase, cases };
}

/**
 * Marks in the page, on its own clock (performance.now()): the Join click, /allocate's answer, the
 * signaling socket's packets (socket.io v5 over a WebSocket: `42["event",…]` events, `42<id>["request",…]`
 * requests and `43<id>[…]` their acks; since protocol 1.3 the requests in the `40{…}` connect packet's
 * `requests` and their `handshakeAnswer` events), peer connections connected, and each remote tile's
 * first frame.
 */
function instrument(): void {
  type Marks = { marks: Record<string, number>; frames: Record<string, number> };
  const state: Marks = { marks: {}, frames: {} };
  (window as unknown as { __firstFrame: Marks }).__firstFrame = state;
  const mark = (name: string) => {
    state.marks[name] ??= performance.now();
  };
  const markLast = (name: string) => {
    state.marks[name] = performance.now();
  };
  document.addEventListener('click', (e) => (e.target as HTMLElement | null)?.id === 'join' && mark('click'), true);
  const nativeFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const response = await nativeFetch(input, init);
    if (String(input instanceof Request ? input.url : input).includes('/allocate')) mark('allocated');
    return response;
  };
  const NativeSocket = window.WebSocket;
  window.WebSocket = class extends NativeSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      const requests = new Map<string, string>();
      const handshake: string[] = [];
      this.addEventListener('open', () => mark('socketOpen'));
      const send = this.send.bind(this);
      this.send = (data) => {
        const request = typeof data === 'string' ? /^42(\d+)\["([^"]+)"/.exec(data) : null;
        if (request) requests.set(request[1]!, request[2]!);
        if (typeof data === 'string' && data.startsWith('40{')) for (const r of (JSON.parse(data.slice(2)) as { requests?: { name: string }[] }).requests ?? []) handshake.push(r.name);
        send(data);
      };
      this.addEventListener('message', (ev: MessageEvent) => {
        if (typeof ev.data !== 'string') return;
        const event = /^42\["([^"]+)"/.exec(ev.data);
        if (event) mark(`event:${event[1]}`);
        const ack = /^43(\d+)/.exec(ev.data);
        const answer = /^42\["handshakeAnswer",\{"index":(\d+)/.exec(ev.data);
        const name = ack ? requests.get(ack[1]!) : answer ? handshake[Number(answer[1])] : undefined;
        if (name) {
          mark(`first:${name}`);
          markLast(`last:${name}`);
        }
      });
    }
  };
  const NativePc = window.RTCPeerConnection;
  const pcs: RTCPeerConnection[] = [];
  window.RTCPeerConnection = class extends NativePc {
    constructor(config?: RTCConfiguration) {
      super(config);
      pcs.push(this);
      this.addEventListener('connectionstatechange', () => this.connectionState === 'connected' && markLast('connected'));
    }
  };
  // The first remote video packet received and the first frame decoded (any publisher), from getStats.
  const poll = setInterval(() => {
    for (const pc of pcs) {
      void pc.getStats().then((report) =>
        report.forEach((s: { type: string; kind?: string; packetsReceived?: number; framesDecoded?: number }) => {
          if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
          if ((s.packetsReceived ?? 0) > 0) mark('videoPacket');
          if ((s.framesDecoded ?? 0) > 0) mark('videoDecoded');
        }),
      );
    }
    if (state.marks.videoDecoded !== undefined) clearInterval(poll);
  }, 10);
  const watch = (video: HTMLVideoElement) => {
    const peer = video.closest<HTMLElement>('figure.tile[data-peer]')?.dataset.peer;
    if (!peer || video.dataset.watched) return;
    video.dataset.watched = '1';
    video.requestVideoFrameCallback(() => {
      state.frames[peer] ??= performance.now();
    });
  };
  new MutationObserver(() => document.querySelectorAll<HTMLVideoElement>('figure.tile[data-peer] video').forEach(watch)).observe(document, { subtree: true, childList: true });
}

async function measureJoin(browser: Browser, embedded: Embedded, room: string): Promise<JoinTimeline> {
  const opened: BrowserContext[] = [];
  try {
    for (const region of PUBLISHERS) opened.push((await joinDemoPage(browser, embedded.routerUrl, { room, name: region, region })).context);
    // The publishers see each other first: the cascade between their edges is up and media flows.
    await sleep(3_000);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    opened.push(context);
    await context.addInitScript({ content: 'globalThis.__name ??= (f) => f;' });
    await context.addInitScript(instrument);
    const page = await context.newPage();
    await page.goto(`${embedded.routerUrl}/demo?room=${encodeURIComponent(room)}&name=${JOINER}&region=${JOINER}`);
    await page.waitForFunction((r) => (document.querySelector('#region') as HTMLSelectElement | null)?.value === r, JOINER, { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll('#rtt td[data-rtt]:not([data-rtt=""])').length > 0, null, { timeout: 30_000 });
    await page.click('#join');
    await page.waitForFunction(
      (peers) => {
        const { frames, marks } = (window as unknown as { __firstFrame: { frames: Record<string, number>; marks: Record<string, number> } }).__firstFrame;
        return marks.videoDecoded !== undefined && peers.every((p) => frames[p] !== undefined);
      },
      [...PUBLISHERS],
      { timeout: 30_000 },
    );
    return await timeline(page);
  } finally {
    for (const c of opened) await c.close().catch(() => undefined);
  }
}

async function timeline(page: Page): Promise<JoinTimeline> {
  const { marks, frames } = await page.evaluate(() => (window as unknown as { __firstFrame: { marks: Record<string, number>; frames: Record<string, number> } }).__firstFrame);
  const since = (name: string) => {
    const at = marks[name];
    if (at === undefined || marks.click === undefined) throw new Error(`first-frame: no "${name}" mark (marks: ${Object.keys(marks).join(', ')})`);
    return Math.round(at - marks.click);
  };
  const firstFrames = Object.fromEntries(PUBLISHERS.map((p) => [p, Math.round(frames[p]! - marks.click!)]));
  return {
    allocated: since('allocated'),
    socketOpen: since('socketOpen'),
    welcome: since('event:welcome'),
    // Since protocol 1.1 the welcome carries the capabilities and nothing asks for them.
    capabilities: since(marks['first:getRouterRtpCapabilities'] !== undefined ? 'first:getRouterRtpCapabilities' : 'event:welcome'),
    joined: since('first:join'),
    transports: since('last:createWebRtcTransport'),
    // Since protocol 1.2 the recv transport's answer carries the consumers of what was there at
    // the join; a `consume` is asked only for a producer announced later.
    consumed: Math.max(since('last:createWebRtcTransport'), marks['last:consume'] !== undefined ? since('last:consume') : 0),
    connected: since('connected'),
    videoPacket: since('videoPacket'),
    videoDecoded: since('videoDecoded'),
    firstFrames,
    firstFrameFromAll: Math.max(...Object.values(firstFrames)),
  };
}
