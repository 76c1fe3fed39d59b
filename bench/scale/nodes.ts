import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { controlPlane as cp } from '../../shared/control-plane.ts';
import type { NodeRegistration, ParticipantEvent } from '../../shared/schemas/index.ts';
import { BODY_LIMIT_BYTES } from '../../shared/http.ts';
import { signRequest } from '../../shared/signed-request.ts';

/**
 * Many scripted nodes for the scale benchmark, cheaper per node than test/utils/fake-nodes.ts (one
 * control server for all, heartbeat bodies built from cached fragments, answers parsed only now
 * and then), so the benchmark's own process can speak for a thousand nodes at once. Each node
 * registers through the router's signed control API and heartbeats every interval, the nodes
 * spread evenly over it, with what an agent sends: its load, its participants' quality (trimmed to
 * the agent's 48 KiB heartbeat budget as region-agent/controller.ts fitHeartbeat does: tracks
 * first, then participants), and the RTT to every peer the router's last answer listed (every node
 * probes every other, as agents do today). The agent never trims the RTTs; here they are limited to
 * what the router takes: at most PEER_RTT_LIMIT entries (the schema) in a body of at most
 * BODY_LIMIT_BYTES (the router's body limit), so a size past that still heartbeats, with fewer
 * RTTs than a real agent would send (and have refused).
 */
export const PEER_RTT_LIMIT = 1_000;
/** region-agent/controller.ts HEARTBEAT_BUDGET_BYTES. */
const AGENT_HEARTBEAT_BUDGET_BYTES = 48 * 1024;

export interface ScaleNodeSpec {
  nodeId: string;
  region: string;
  /** Participants it reports (its quality list has that many entries). */
  participants: number;
}

interface ScaleNode {
  spec: ScaleNodeSpec;
  seq: number;
  beating: boolean;
  inFlight: boolean;
  /** The peers of the router's last parsed answer, and the peerRtt JSON built from them. */
  peers: Array<{ nodeId: string; region: string }>;
  peerRttJson: string;
  /** peerRtt entries in the body (what fits), of the peers listed. */
  peerRttEntries: number;
  /** peerRtt entries a heartbeat of this node could carry at most (the router's body limit, the schema's). */
  peerRttCapacity: number;
  qualityJson: string;
  /** The participants' quality entries, with and without their tracks. */
  quality: { withTracks: string[]; withoutTracks: string[] };
  /** Heartbeats since the answer was last parsed for its peer list. */
  sinceParsed: number;
}

export interface HeartbeatCounts {
  sent: number;
  answered: number;
  /** Answered with known: false (the router forgot it) or not 2xx, or the call failed. */
  failed: number;
  /** A beat due while the node's previous one was still unanswered (not sent). */
  skipped: number;
}

/** The answer is parsed for its peer list on a node's first heartbeat and every this many after. */
const PARSE_PEERS_EVERY = 10;

export class ScaleNodes {
  readonly #nodes = new Map<string, ScaleNode>();
  readonly #pool: Pool;
  readonly #control: http.Server;
  #controlUrl = '';
  #timer: NodeJS.Timeout | null = null;
  readonly #inFlight = new Set<Promise<void>>();
  counts: HeartbeatCounts = { sent: 0, answered: 0, failed: 0, skipped: 0 };

  constructor(
    private readonly routerUrl: string,
    private readonly secret: string,
    /** RTT between two regions, ms (what a probe would measure). */
    private readonly rttMs: (from: string, to: string) => number,
  ) {
    this.#pool = new Pool(routerUrl, { connections: 32, pipelining: 1 });
    // Probes, moves and pushes from the router: all answered at once (nothing acts on them here).
    this.#control = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.statusCode = req.url === cp.move.path ? 202 : 204;
        res.end();
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#control.listen(0, '127.0.0.1', r));
    this.#controlUrl = `http://127.0.0.1:${(this.#control.address() as AddressInfo).port}`;
  }

  get size(): number {
    return this.#nodes.size;
  }

  /** The nodes heartbeating now. */
  beatingIds(): string[] {
    return [...this.#nodes.values()].filter((n) => n.beating).map((n) => n.spec.nodeId);
  }

  async register(spec: ScaleNodeSpec): Promise<void> {
    const registration: NodeRegistration = {
      nodeId: spec.nodeId,
      region: spec.region,
      controlUrl: this.#controlUrl,
      signalingUrl: `${this.#controlUrl}/${spec.nodeId}`,
      probeUrl: `${this.#controlUrl}/probe`,
      maxParticipants: 100_000,
      version: 'scale-bench',
    };
    const { status, text } = await this.call(cp.register.path, JSON.stringify(registration));
    if (status !== 200) throw new Error(`register ${spec.nodeId}: ${status} ${text.slice(0, 200)}`);
    const quality = qualityEntries(spec);
    const node: ScaleNode = { spec, seq: 0, beating: true, inFlight: false, peers: [], peerRttJson: '{}', peerRttEntries: 0, peerRttCapacity: 0, qualityJson: '[]', quality, sinceParsed: 0 };
    node.qualityJson = fitQuality(quality, AGENT_HEARTBEAT_BUDGET_BYTES - Buffer.byteLength(this.#body({ ...node })));
    this.#nodes.set(spec.nodeId, node);
  }

  /** Stops heartbeating for the node, as if it died. */
  silence(nodeId: string): void {
    this.#nodes.get(nodeId)!.beating = false;
  }

  /**
   * Heartbeats every node every `intervalMs`, node i at offset i/N of the interval (ticks of
   * `tickMs`), so the router sees a steady rate rather than a burst per interval.
   */
  beat(intervalMs: number, tickMs = 10): void {
    this.stopBeating();
    const startedAt = Date.now();
    let done = 0;
    this.#timer = setInterval(() => {
      const nodes = [...this.#nodes.values()];
      // Beats due since the start: node i's k-th at k × interval + i/N × interval.
      const due = Math.floor(((Date.now() - startedAt) / intervalMs) * nodes.length);
      for (; done < due; done++) {
        const node = nodes[done % nodes.length];
        if (!node || !node.beating) continue;
        if (node.inFlight) {
          this.counts.skipped++;
          continue;
        }
        const call = this.#heartbeat(node);
        this.#inFlight.add(call);
        void call.finally(() => this.#inFlight.delete(call));
      }
    }, tickMs);
  }

  stopBeating(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One heartbeat of the node now (its answer parsed for the peer list). */
  async heartbeatOnce(nodeId: string): Promise<{ status: number; text: string }> {
    const node = this.#nodes.get(nodeId)!;
    node.sinceParsed = PARSE_PEERS_EVERY;
    const res = await this.call(cp.heartbeat.path, this.#body(node));
    if (res.status === 200) this.#learnPeers(node, res.text);
    return res;
  }

  /** The size of the node's heartbeat body now, bytes. */
  heartbeatBodyBytes(nodeId: string): number {
    const node = this.#nodes.get(nodeId)!;
    return Buffer.byteLength(this.#body({ ...node }));
  }

  /**
   * A heartbeat as the agent would send it: the RTT to every peer the router listed (not limited
   * to what the router takes), its quality list emptied to make room. What the router answers it.
   */
  async heartbeatWithAllPeers(nodeId: string): Promise<{ status: number; bytes: number; entries: number }> {
    const node = this.#nodes.get(nodeId)!;
    const body = this.#body(node, `{${this.#rttEntries(node, node.peers).join(',')}}`, '[]');
    const { status } = await this.call(cp.heartbeat.path, body);
    return { status, bytes: Buffer.byteLength(body), entries: node.peers.length };
  }

  async #heartbeat(node: ScaleNode): Promise<void> {
    node.inFlight = true;
    this.counts.sent++;
    try {
      const { status, text } = await this.call(cp.heartbeat.path, this.#body(node));
      if (status === 200 && text.startsWith('{"known":true')) {
        this.counts.answered++;
        if (++node.sinceParsed >= PARSE_PEERS_EVERY || node.peers.length === 0) this.#learnPeers(node, text);
      } else this.counts.failed++;
    } catch {
      this.counts.failed++;
    } finally {
      node.inFlight = false;
    }
  }

  #learnPeers(node: ScaleNode, answer: string): void {
    node.sinceParsed = 0;
    const peers = (JSON.parse(answer) as { peers: Array<{ nodeId: string; region: string }> }).peers;
    if (peers.length === node.peers.length && peers.every((p, i) => p.nodeId === node.peers[i]!.nodeId)) return;
    node.peers = peers;
    const entries = this.#rttEntries(node, peers.slice(0, PEER_RTT_LIMIT));
    // As many as fit the router's body limit beside an empty quality list.
    const base = Buffer.byteLength(this.#body({ ...node }, '{}', '[]'));
    let bytes = base;
    let fit = 0;
    while (fit < entries.length && bytes + Buffer.byteLength(entries[fit]!) + 1 <= BODY_LIMIT_BYTES) bytes += Buffer.byteLength(entries[fit++]!) + 1;
    node.peerRttEntries = fit;
    // Entries of this size a body could hold at most (the schema's limit aside).
    node.peerRttCapacity = fit < entries.length || fit === 0 ? fit : Math.min(PEER_RTT_LIMIT, Math.floor(((BODY_LIMIT_BYTES - base) * fit) / (bytes - base)));
    node.peerRttJson = `{${entries.slice(0, fit).join(',')}}`;
    node.qualityJson = fitQuality(node.quality, AGENT_HEARTBEAT_BUDGET_BYTES - Buffer.byteLength(this.#body({ ...node }, node.peerRttJson, '[]')));
  }

  /** What a probe of each peer would have measured (shared/probe-stats.ts rounds to 0.01 ms), as peerRtt entries. */
  #rttEntries(node: ScaleNode, peers: ReadonlyArray<{ nodeId: string; region: string }>): string[] {
    return peers.map((p, i) => {
      const rtt = this.rttMs(node.spec.region, p.region) + (i % 7) * 0.37;
      return `${JSON.stringify(p.nodeId)}:{"rttMs":${rtt.toFixed(2)},"medianMs":${(rtt - 0.2).toFixed(2)},"jitterMs":${(0.41 + (i % 5) * 0.13).toFixed(2)},"loss":0,"samples":20}`;
    });
  }

  /** peerRtt entries a heartbeat of the node could carry at most. */
  peerRttCapacity(nodeId: string): number {
    return this.#nodes.get(nodeId)!.peerRttCapacity;
  }

  /** peerRtt entries the node's heartbeats carry now. */
  peerRttEntries(nodeId: string): number {
    return this.#nodes.get(nodeId)!.peerRttEntries;
  }

  #body(node: ScaleNode, peerRttJson = node.peerRttJson, qualityJson = node.qualityJson): string {
    const p = node.spec.participants;
    const cpu = (0.25 + 0.3 * (p / 100) + ((node.seq * 7) % 10) / 200).toFixed(3);
    const load = `{"cpu":${cpu},"memory":0.31,"participants":${p},"rooms":${Math.ceil(p / 5)},"transports":${2 * p},"producers":${2 * p},"consumers":${p * 18},"workers":4}`;
    return `{"nodeId":${JSON.stringify(node.spec.nodeId)},"seq":${++node.seq},"load":${load},"draining":false,"cordoned":false,"maxParticipants":100000,"peerRtt":${peerRttJson},"quality":${qualityJson}}`;
  }

  /** A signed participant event from `event.nodeId` (the join or leave report an agent sends). */
  async participantEvent(event: ParticipantEvent): Promise<{ status: number; text: string }> {
    return this.call(cp.participantEvent.path, JSON.stringify(event));
  }

  async call(path: string, body: string): Promise<{ status: number; text: string }> {
    const headers = signRequest(this.secret, { method: 'POST', path, body }, Date.now());
    const res = await this.#pool.request({ method: 'POST', path, headers: { ...headers, 'content-type': 'application/json' }, body, headersTimeout: 20_000, bodyTimeout: 20_000 });
    return { status: res.statusCode, text: await res.body.text() };
  }

  async close(): Promise<void> {
    this.stopBeating();
    // Heartbeats still waiting on a saturated router are abandoned, not awaited.
    await this.#pool.destroy();
    await Promise.allSettled([...this.#inFlight]);
    const closed = new Promise<void>((r) => this.#control.close(() => r()));
    this.#control.closeAllConnections();
    await closed;
  }
}

/** An agent's quality entries: per participant its loss, RTT, jitter, bitrate, with and without its two tracks in. */
function qualityEntries(spec: ScaleNodeSpec): ScaleNode['quality'] {
  const withTracks: string[] = [];
  const withoutTracks: string[] = [];
  for (let i = 0; i < spec.participants; i++) {
    const track = (kind: string, bps: number) => `{"direction":"in","kind":"${kind}","producerId":"${spec.nodeId}-${kind}-${i}","paused":false,"bitrateBps":${bps},"loss":0.001,"rttMs":42,"jitterMs":3,"score":10,"spatialLayers":1,"temporalLayers":1}`;
    const head = `"roomId":"room-${i % 20}","participantId":"${spec.nodeId}-p${i}","packetLoss":0.002,"rttMs":40,"jitterMs":3.2,"bitrateBps":850000,"inBps":900000,"outBps":4500000`;
    withTracks.push(`{${head},"tracks":[${track('audio', 40_000)},${track('video', 800_000)}]}`);
    withoutTracks.push(`{${head}}`);
  }
  return { withTracks, withoutTracks };
}

/** The quality list within `budget` bytes, trimmed as fitHeartbeat does: tracks kept for the first n (halving), then participants from the end. */
function fitQuality(q: ScaleNode['quality'], budget: number): string {
  const json = (parts: string[]) => `[${parts.join(',')}]`;
  const full = json(q.withTracks);
  if (full.length <= budget) return full;
  for (let n = Math.floor(q.withTracks.length / 2); n > 0; n = Math.floor(n / 2)) {
    const candidate = json([...q.withTracks.slice(0, n), ...q.withoutTracks.slice(n)]);
    if (candidate.length <= budget) return candidate;
  }
  let kept = q.withoutTracks;
  while (kept.length > 0 && json(kept).length > budget) kept = kept.slice(0, Math.floor(kept.length / 2));
  return json(kept);
}
