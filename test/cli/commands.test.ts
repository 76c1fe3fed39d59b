import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INPUT, planCapacity } from '../../cli/capacity.ts';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { type AllocateSfuResponse, nodeOccupancy, type RegionsResponse, type RoomView } from '../../shared/schemas/index.ts';
import { runCli, startStub, type StubRequest } from './helpers.ts';

/**
 * The CLI as a child process: help, argument errors (exit 2), output against a stub router, and
 * last against the embedded cluster. One file on purpose: its tests run one after another, so the
 * live RTT measurements do not compete for the 2 cores with a burst of CLI start-ups elsewhere.
 */

describe('--help', () => {
  it('the program and every command print help and exit 0', async () => {
    const results = await Promise.all([[], ['probe'], ['allocate'], ['regions'], ['rooms'], ['capacity']].map((cmd) => runCli([...cmd, '--help'])));
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Usage: geo-sfu/);
      expect(r.stdout).toMatch(/Exit codes:/);
    }
    expect(results[0]!.stdout).toMatch(/probe[\s\S]*allocate[\s\S]*regions[\s\S]*rooms[\s\S]*nodes[\s\S]*alerts[\s\S]*scaling[\s\S]*capacity/);
    expect(results[0]!.stdout).toContain('GEO_SFU_ADMIN_TOKEN');
    expect(results[2]!.stdout).toContain('--dry-run');
    expect(results[4]!.stdout).toMatch(/show \[options\] <roomId>[\s\S]*list[\s\S]*kick \[options\] <roomId> <participantId>/);
    for (const flag of ['--samples <n>', '--timeout <ms>', '--router <url>', '--json', '--no-progress']) expect(results[1]!.stdout).toContain(flag);
    for (const flag of ['--room <id>', '--participant <id>', '--latency <region=ms...>', '--exclude-node <id>', '--samples <n>']) expect(results[2]!.stdout).toContain(flag);
    expect(results[4]!.stdout).toContain('<roomId>');
    for (const text of ['--participants <n>', '--rooms <r>', '--bitrate-kbps <b>', '--simulcast', '--regions <k>', '[1000, ∞)']) expect(results[5]!.stdout).toContain(text);
  });

  it('the operator commands print help and exit 0', async () => {
    const results = await Promise.all([['nodes'], ['nodes', 'cordon'], ['rooms', 'kick'], ['alerts'], ['scaling']].map((cmd) => runCli([...cmd, '--help'])));
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Usage: geo-sfu/);
      expect(r.stdout).toMatch(/Exit codes:/);
    }
    expect(results[0]!.stdout).toMatch(/list[\s\S]*cordon \[options\] <nodeId>[\s\S]*uncordon[\s\S]*drain/);
    expect(results[1]!.stdout).toContain('<nodeId>');
    expect(results[2]!.stdout).toContain('<participantId>');
  });
});

describe('argument errors exit 2 and name the flag', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['missing --participants', ['capacity'], /required option '--participants <n>'/],
    ['--participants 1', ['capacity', '--participants', '1'], /--participants <n>.*'1' is invalid/],
    ['--participants 2.5', ['capacity', '--participants', '2.5'], /--participants <n>.*'2\.5' is invalid/],
    ['--participants ten', ['capacity', '--participants', 'ten'], /--participants <n>.*'ten' is invalid/],
    ['negative bitrate', ['capacity', '--participants', '10', '--bitrate-kbps', '-5'], /--bitrate-kbps <b>.*'-5' is invalid/],
    ['zero bitrate', ['capacity', '--participants', '10', '--bitrate-kbps', '0'], /--bitrate-kbps <b>.*'0' is invalid/],
    ['--rooms 0', ['capacity', '--participants', '10', '--rooms', '0'], /--rooms <r>.*'0' is invalid/],
    ['--regions 1.5', ['capacity', '--participants', '10', '--regions', '1.5'], /--regions <k>.*'1\.5' is invalid/],
    ['--receive-layer without --simulcast', ['capacity', '--participants', '10', '--receive-layer', 'low'], /--receive-layer needs --simulcast/],
    ['--receive-layer huge', ['capacity', '--participants', '10', '--simulcast', '--receive-layer', 'huge'], /--receive-layer <layer>.*'huge' is invalid/],
    ['allocate without --room', ['allocate', '--latency', 'us-west=10'], /required option '--room <id>'/],
    ['allocate bad --latency', ['allocate', '--room', 'r', '--latency', 'us-west=fast'], /--latency <region=ms\.\.\.>.*invalid/],
    ['allocate bad --participant', ['allocate', '--room', 'r', '--participant', 'a b'], /--participant <id>.*invalid/],
    ['probe --samples 0', ['probe', '--samples', '0'], /--samples <n>.*'0' is invalid/],
    ['rooms with a bad id', ['rooms', 'bad id!'], /argument 'roomId'/],
    ['rooms show with a bad id', ['rooms', 'show', 'bad id!'], /argument 'roomId'/],
    ['rooms without an id', ['rooms'], /missing required argument 'roomId'/],
    ['rooms kick without a participant', ['rooms', 'kick', 'r'], /missing required argument 'participantId'/],
    ['rooms kick with a bad participant', ['rooms', 'kick', 'r', '__proto__!'], /argument 'participantId'/],
    ['nodes cordon without a node', ['nodes', 'cordon'], /missing required argument 'nodeId'/],
    ['nodes drain with a bad node', ['nodes', 'drain', 'a b'], /argument 'nodeId'/],
    ['--router not a URL', ['regions', '--router', 'localhost'], /--router must be an http\(s\) URL/],
    ['unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['unknown option', ['regions', '--verbose'], /unknown option '--verbose'/],
  ];
  it.concurrent.each(cases)('%s', async (_name, args, message) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('a bad GEO_SFU_ROUTER_URL is named', async () => {
    const r = await runCli(['regions'], { GEO_SFU_ROUTER_URL: 'ftp://router' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/GEO_SFU_ROUTER_URL must be an http\(s\) URL/);
  });
});

describe('capacity', () => {
  it('--json is the plan of the pure function', async () => {
    const r = await runCli(['capacity', '--participants', '50', '--rooms', '20', '--bitrate-kbps', '1500', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(planCapacity({ ...DEFAULT_INPUT, participants: 50, rooms: 20, bitrateKbps: 1500 }));
  });

  it('the table shows architecture, nodes, bandwidth and cost', async () => {
    const r = await runCli(['capacity', '--participants', '10', '--bitrate-kbps', '1000']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Architecture: single SFU \(total participants in \[9, 50\)\)/);
    expect(r.stdout).toMatch(/SFU ingress\s+│\s+10 Mbit\/s/);
    expect(r.stdout).toMatch(/SFU egress\s+│\s+90 Mbit\/s/);
    expect(r.stdout).toMatch(/total\s+│\s+│\s+│\s+\$826\.52/);
  });
});

// --- against a stub router -------------------------------------------------------------------

const node = (id: string, region: string, probeUrl: string, probeMedian: number) => ({
  nodeId: id,
  region,
  state: 'alive' as const,
  draining: false,
  cordoned: false,
  signalingUrl: `http://${id}.invalid`,
  probeUrl,
  load: { cpu: 0.1, memory: 0.2, participants: 3, rooms: 1, transports: 6, producers: 6, consumers: 12, workers: 2 },
  // The router counts 4 allocations (3 of them joined, as the agent reports): 1 pending.
  reserved: 4,
  maxParticipants: 100,
  occupancy: nodeOccupancy(4, 3),
  stress: 0.14,
  lastHeartbeatAgoMs: 200,
  probe: { rttMs: probeMedian, medianMs: probeMedian, jitterMs: 1, loss: 0, samples: 20 },
});

function regionsFor(base: string): RegionsResponse {
  return {
    regions: [
      { id: 'near', displayName: 'Near', lat: 0, lon: 0, healthy: true, nodes: [node('near-1', 'near', `${base}/probe/near`, 5)] },
      { id: 'far', displayName: 'Far', lat: 0, lon: 90, healthy: true, nodes: [node('far-1', 'far', `${base}/probe/far`, 50)] },
      { id: 'empty', displayName: 'Empty', lat: 0, lon: 180, healthy: false, nodes: [] },
    ],
    interRegionRttMs: { near: { near: 0, far: 70, empty: null }, far: { near: 71, far: 0, empty: null }, empty: { near: null, far: null, empty: 0 } },
    interRegion: {},
  };
}

const ROOM: RoomView = {
  roomId: 'known',
  homeRegion: 'near',
  homeNodeId: 'near-1',
  epoch: 1,
  participants: [
    { participantId: 'alice', region: 'near', nodeId: 'near-1', status: 'joined', allocationId: 'a1' },
    { participantId: 'bob', region: 'far', nodeId: 'far-1', status: 'allocated', allocationId: 'a2' },
  ],
  cascade: {
    regions: ['near', 'far'],
    nodes: ['near-1', 'far-1'],
    links: [
      { from: 'near-1', to: 'far-1', fromRegion: 'near', toRegion: 'far' },
      { from: 'far-1', to: 'near-1', fromRegion: 'far', toRegion: 'near' },
    ],
  },
};

function allocation(body: { roomId: string; participantId: string; latencies?: Record<string, number> }): AllocateSfuResponse {
  return {
    mode: 'sfu',
    allocationId: 'alloc-1',
    roomId: body.roomId,
    participantId: body.participantId,
    homeRegion: 'near',
    region: 'near',
    node: { id: 'near-1', region: 'near', signalingUrl: 'http://near-1.invalid' },
    token: 'header.payload.signature',
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    iceServers: [],
    cascade: { regions: ['near'] },
    rttSource: body.latencies ? 'client' : 'default',
    reasons: [{ code: 'FIRST_PARTICIPANT_SETS_HOME', message: 'first participant: near becomes home', region: 'near' }],
    candidates: [
      { region: 'near', score: 5, clientRttMs: body.latencies?.near ?? 100, nodeId: 'near-1' },
      { region: 'far', score: 50, clientRttMs: body.latencies?.far ?? 100, nodeId: 'far-1' },
      { region: 'empty', score: null, clientRttMs: 100, excludedBecause: 'NO_NODES' },
    ],
  };
}

describe('against a stub router', () => {
  let stub: Awaited<ReturnType<typeof startStub>>;
  const allocations = () => stub.requests.filter((r) => r.url === '/allocate');
  const lastAllocation = (): StubRequest => allocations().at(-1)!;

  beforeAll(async () => {
    stub = await startStub((req, base) => {
      if (req.url.startsWith('/probe/')) return { status: 204 };
      if (req.method === 'GET' && req.url === '/regions') return { status: 200, body: regionsFor(base) };
      if (req.method === 'GET' && req.url === '/rooms/known') return { status: 200, body: ROOM };
      if (req.method === 'GET' && req.url === '/rooms/broken') return { status: 200, body: { roomId: 'broken' } };
      if (req.method === 'GET' && req.url.startsWith('/rooms/')) return { status: 404, body: { error: { code: 'NOT_FOUND', message: 'room does not exist' } } };
      if (req.method === 'POST' && req.url === '/allocate') {
        const body = JSON.parse(req.body) as { roomId: string; participantId: string; latencies?: Record<string, number> };
        if (body.roomId === 'full') return { status: 503, headers: { 'retry-after': '7' }, body: { error: { code: 'NO_CAPACITY', message: 'no region can take participant x now' } } };
        if (body.latencies && 'mars' in body.latencies) {
          return { status: 400, body: { error: { code: 'BAD_REQUEST', message: 'latencies.mars is not a region of this deployment', field: 'latencies.mars' } } };
        }
        return { status: 200, body: allocation(body) };
      }
      return { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no route' } } };
    });
  });
  afterAll(() => stub?.close());

  it('regions: --json is the router answer; the table shows nodes and the RTT matrix', async () => {
    const [json, text] = await Promise.all([runCli(['regions', '--json', '--router', stub.url]), runCli(['regions'], { GEO_SFU_ROUTER_URL: stub.url })]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(regionsFor(stub.url));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/near\s+│ yes\s+│ near-1\s+│ alive\s+│\s+0\.14 │\s+10% │\s+20% │\s+3\+1\/100 │\s+1 │\s+5\.0 │/);
    expect(text.stdout).toMatch(/empty\s+│ no\s+│ —\s+│ no nodes/);
    expect(text.stdout).toMatch(/far\s+│\s+71\.0 │\s+— │\s+— │/);
  });

  it('probe: every live node probed, lowest median recommended, the empty region reported', async () => {
    const r = await runCli(['probe', '--json', '--samples', '4', '--router', stub.url]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { samples: number; recommended: string; regions: Array<{ region: string; sent: number; received: number; medianMs: number | null; note?: string }> };
    expect(report.samples).toBe(4);
    expect(report.regions.map((x) => [x.region, x.sent, x.received])).toEqual([['near', 4, 4], ['far', 4, 4], ['empty', 0, 0]]);
    expect(report.regions[2]!.note).toBe('no node registered');
    expect(['near', 'far']).toContain(report.recommended);
    // Warm-up + 4 samples per node.
    expect(stub.requests.filter((q) => q.url === '/probe/near')).toHaveLength(5);
  });

  it('allocate with --latency sends them (and the API key) and prints the decision', async () => {
    const r = await runCli(['allocate', '--room', 'r1', '--participant', 'alice', '--latency', 'near=12', '--latency', 'far=80.5', '--router', stub.url], { GEO_SFU_API_KEY: 'k-123' });
    expect(r.code, r.stderr).toBe(0);
    const req = lastAllocation();
    expect(req.headers.authorization).toBe('Bearer k-123');
    expect(JSON.parse(req.body)).toEqual({ roomId: 'r1', participantId: 'alice', latencies: { near: 12, far: 80.5 } });
    expect(r.stdout).toMatch(/home region\s+near/);
    expect(r.stdout).toMatch(/edge region\s+near/);
    expect(r.stdout).toMatch(/FIRST_PARTICIPANT_SETS_HOME/);
    expect(r.stdout).toMatch(/empty\s+│\s+100\.0 │\s+— │ —\s+│ NO_NODES/);
    expect(r.stdout).not.toMatch(/header\.payload\.signature/);
  });

  it('allocate without --latency probes first and sends the medians', async () => {
    const r = await runCli(['allocate', '--room', 'r2', '--samples', '3', '--json', '--router', stub.url]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { request: { participantId: string; latencies: Record<string, number> }; response: AllocateSfuResponse; probe: { regions: Array<{ region: string; medianMs: number }> } };
    const sent = JSON.parse(lastAllocation().body) as { latencies: Record<string, number>; participantId: string };
    expect(Object.keys(sent.latencies)).toEqual(['near', 'far']);
    expect(sent.latencies.near).toBe(Math.round(out.probe.regions[0]!.medianMs * 10) / 10);
    expect(sent.participantId).toMatch(/^cli-[0-9a-f]{8}$/);
    expect(out.request).toEqual(sent);
    expect(out.response.token).toBe('header.payload.signature');
  });

  it('a router 400 is printed with its field, exit 1', async () => {
    const r = await runCli(['allocate', '--room', 'r3', '--latency', 'mars=10', '--router', stub.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/POST \/allocate failed: 400 BAD_REQUEST: latencies\.mars is not a region.*\(field: latencies\.mars\)/);
  });

  it('a 503 is printed with Retry-After, exit 1; with --json the error is JSON on stdout', async () => {
    const [text, json] = await Promise.all([
      runCli(['allocate', '--room', 'full', '--latency', 'near=1', '--router', stub.url]),
      runCli(['allocate', '--room', 'full', '--latency', 'near=1', '--router', stub.url, '--json']),
    ]);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/503 NO_CAPACITY: no region can take participant x now; retry after 7 s/);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'NO_CAPACITY', message: expect.stringMatching(/503/), status: 503, retryAfterSeconds: 7 } });
  });

  it('rooms: table and JSON; unknown room and malformed answers exit 1', async () => {
    const [text, json, missing, broken] = await Promise.all([
      runCli(['rooms', 'known', '--router', stub.url]),
      runCli(['rooms', 'known', '--json', '--router', stub.url]),
      runCli(['rooms', 'nope', '--router', stub.url]),
      runCli(['rooms', 'broken', '--router', stub.url]),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Room known: home near on near-1 \(epoch 1\), 2 participant\(s\)/);
    expect(text.stdout).toMatch(/near \(home\)\s+│ near-1\s+│\s+1 │ alice/);
    expect(text.stdout).toMatch(/far\s+│ far-1\s+│\s+1 │ bob \(allocated\)/);
    expect(text.stdout).toMatch(/near near-1\s+│ far far-1/);
    expect(JSON.parse(json.stdout)).toEqual(ROOM);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/GET \/rooms\/nope failed: 404 NOT_FOUND/);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/unexpected body/);
  });
});

it('probe: a region that never answers is all loss within --timeout, the others still count', async () => {
  const stub = await startStub((req, base) => {
    if (req.url === '/probe/ok') return { status: 204 };
    if (req.url === '/probe/hang') return null;
    const view = regionsFor(base);
    view.regions[0]!.nodes[0]!.probeUrl = `${base}/probe/ok`;
    view.regions[1]!.nodes[0]!.probeUrl = `${base}/probe/hang`;
    return { status: 200, body: view };
  });
  try {
    const started = Date.now();
    const r = await runCli(['probe', '--samples', '3', '--timeout', '800', '--router', stub.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stdout).toMatch(/near \*\s+│ near-1\s+│\s+3\/3 │/);
    expect(r.stdout).toMatch(/far\s+│ far-1\s+│\s+0\/3 │\s+— │\s+— │\s+— │\s+— │\s+100% │/);
    expect(r.stdout).toMatch(/far-1: 100% lost \((no answer within \d+ ms|region timeout)\)/);
    expect(r.stdout).toMatch(/recommended: near/);
  } finally {
    await stub.close();
  }
});

it('an unreachable router is a runtime error, exit 1', async () => {
  // Port 1 on loopback: nothing listens there and nothing needs to.
  const r = await runCli(['regions', '--router', 'http://127.0.0.1:1']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/cannot reach the router at http:\/\/127\.0\.0\.1:1/);
});

/**
 * The CLI against the embedded default (router + 4 agents as child processes on free loopback
 * ports) with the sample WAN profile, whose clientRttMs puts delay proxies in front of each agent:
 * what `geo-sfu probe` measures from here must follow those figures.
 */
describe('live, against the embedded cluster', () => {
  let embedded: Embedded;
  const output: string[] = [];

  beforeAll(async () => {
    embedded = await launchEmbedded({
      config: loadConfig({ GEO_SFU_WAN_PROFILE: 'infra/embedded/sample-wan-profile.json' }),
      fixedPorts: false,
      // Allocations stay pending (unjoined) for the whole file instead of the default 30 s.
      env: { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_ALLOCATION_TTL_MS: '600000' },
      onOutput: (name, line) => output.push(`[${name}] ${line}`),
    });
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      try {
        const body = (await (await fetch(`${embedded.routerUrl}/regions`)).json()) as RegionsResponse;
        // Healthy, and past start-up: the router has probed every node a few times.
        if (body.regions.length === 4 && body.regions.every((r) => r.healthy && r.nodes.some((n) => n.state === 'alive' && n.probe.samples >= 5))) return;
      } catch {
        // Router not up yet.
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`embedded cluster not healthy within 45 s:\n${output.slice(-20).join('\n')}`);
  }, 60_000);

  afterAll(async () => {
    await embedded?.close();
  });

  const cli = (args: string[]) => runCli([...args, '--router', embedded.routerUrl]);
  const decisions: AllocateSfuResponse[] = [];

  it('probe --json: figures follow the profile clientRttMs (min < 1.25 × figure + 15 ms, median < 1.25 × figure + 40 ms on a shared machine)', async () => {
    const r = await cli(['probe', '--json', '--samples', '10']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { recommended: string; regions: Array<{ region: string; minMs: number; medianMs: number; p95Ms: number; jitterMs: number; loss: number; received: number }> };
    const profile = embedded.wanProfile!.clientRttMs!;
    const lines: string[] = [];
    for (const region of report.regions) {
      const expected = profile[region.region]!;
      lines.push(`${region.region}: min ${region.minMs} / median ${region.medianMs} / p95 ${region.p95Ms} ms, jitter ${region.jitterMs} ms, loss ${region.loss} (profile ${expected} ms, bounds: min < ${expected * 1.25 + 15}, median < ${expected * 1.25 + 40})`);
      expect(region.received).toBe(10);
      // Node's millisecond timers in the delay proxy can fire up to 1 ms early in each direction.
      expect(region.minMs).toBeGreaterThanOrEqual(expected - 2);
      expect(region.minMs).toBeLessThan(expected * 1.25 + 15);
      expect(region.medianMs).toBeLessThan(expected * 1.25 + 40);
    }
    console.log(`geo-sfu probe against the sample WAN profile:\n${lines.join('\n')}\nrecommended: ${report.recommended}`);
    expect(report.regions.map((x) => x.region)).toEqual(['us-west', 'us-east', 'eu-west', 'apac']);
    expect(report.recommended).toBe('us-west');
  }, 60_000);

  it('allocate --json probes, sends the medians and returns a decision', async () => {
    const r = await cli(['allocate', '--json', '--room', 'cli-live', '--participant', 'near-us-west', '--samples', '5']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { request: { latencies: Record<string, number> }; response: AllocateSfuResponse };
    expect(Object.keys(out.request.latencies)).toEqual(['us-west', 'us-east', 'eu-west', 'apac']);
    expect(out.response.rttSource).toBe('client');
    expect(out.response.homeRegion).toBe('us-west');
    expect(out.response.region).toBe('us-west');
    expect(embedded.agents.map((a) => a.nodeId)).toContain(out.response.node.id);
    expect(out.response.candidates).toHaveLength(4);
    console.log(`allocate (probed): sent ${JSON.stringify(out.request.latencies)} → home ${out.response.homeRegion}, edge ${out.response.region}, node ${out.response.node.id}`);
    decisions.push(out.response);

    // A second participant far from us-west, with its RTTs given: the router places it by the delay model.
    const london = await cli(['allocate', '--json', '--room', 'cli-live', '--participant', 'london', '--latency', 'us-west=140', 'us-east=90', 'eu-west=5', 'apac=180']);
    expect(london.code, london.stderr).toBe(0);
    const second = (JSON.parse(london.stdout) as { response: AllocateSfuResponse }).response;
    expect(second.homeRegion).toBe('us-west');
    console.log(`allocate (--latency, London): edge ${second.region}, cascade ${second.cascade.regions.join(',')}`);
    decisions.push(second);

    const text = await cli(['allocate', '--room', 'cli-live-text', '--latency', 'us-west=20,us-east=75,eu-west=140,apac=175']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/home region\s+us-west/);
  }, 60_000);

  it('regions --json and rooms ID --json parse and agree with the allocations', async () => {
    expect(decisions).toHaveLength(2);
    const [regionsOut, roomOut, regionsText, roomText] = await Promise.all([
      cli(['regions', '--json']),
      cli(['rooms', 'cli-live', '--json']),
      cli(['regions']),
      cli(['rooms', 'cli-live']),
    ]);
    for (const r of [regionsOut, roomOut, regionsText, roomText]) expect(r.code, r.stderr).toBe(0);
    const regions = JSON.parse(regionsOut.stdout) as RegionsResponse;
    const room = JSON.parse(roomOut.stdout) as RoomView;

    expect(regions.regions.map((r) => r.id)).toEqual(['us-west', 'us-east', 'eu-west', 'apac']);
    const nodeRegion = new Map(regions.regions.flatMap((r) => r.nodes.map((n) => [n.nodeId, r.id] as const)));
    for (const agent of embedded.agents) {
      const view = regions.regions.flatMap((r) => r.nodes).find((n) => n.nodeId === agent.nodeId)!;
      expect(view.region).toBe(agent.region);
      expect(view.probeUrl.startsWith(agent.publicUrl)).toBe(true);
    }
    const [first, second] = decisions as [AllocateSfuResponse, AllocateSfuResponse];
    expect(room.roomId).toBe('cli-live');
    expect(room.homeRegion).toBe(first.homeRegion);
    expect(nodeRegion.get(room.homeNodeId)).toBe(room.homeRegion);
    const byId = new Map(room.participants.map((p) => [p.participantId, p]));
    for (const d of decisions) {
      expect(byId.get(d.participantId)).toMatchObject({ region: d.region, nodeId: d.node.id, allocationId: d.allocationId });
      expect(nodeRegion.get(d.node.id)).toBe(d.region);
    }
    expect(room.cascade.regions).toEqual(second.cascade.regions);
    const reserved = regions.regions.flatMap((r) => r.nodes).reduce((s, n) => s + n.reserved + n.load.participants, 0);
    expect(reserved).toBeGreaterThanOrEqual(3); // cli-live's two + cli-live-text's one, none joined
    console.log(`rooms cli-live: home ${room.homeRegion}; participants ${room.participants.map((p) => `${p.participantId}@${p.region}`).join(', ')}; cascade ${room.cascade.regions.join(' ↔ ')}`);
    console.log(`router probe medians: ${regions.regions.map((r) => `${r.id} ${r.nodes[0]?.probe.medianMs}`).join(', ')}`);

    expect(regionsText.stdout).toMatch(/Inter-region RTT/);
    expect(roomText.stdout).toMatch(/Room cli-live: home us-west/);
  }, 60_000);
});
