/**
 * shared/turn.ts against a real coturn (Debian's `coturn`, installed by `npm run setup:test`): a
 * turnserver on a free loopback port with use-auth-secret, and coturn's own test client
 * turnutils_uclient allocating relays with the credentials we mint. Then the shipped production
 * configuration, run on loopback, must authenticate the same credentials but refuse to relay to
 * a loopback peer. Everything stays on 127.0.0.1.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { startRouter, testConfig } from '../utils/router-harness.ts';
import { turnCredentials } from '../../shared/turn.ts';
import { INFRA, freeTcpUdpPort, requireTool } from './helpers.ts';

const SECRET = 'geo-sfu-coturn-test-secret-0123456789';
const REALM = 'geo-sfu.test';
const HOW = "run 'npm run setup:test' (infra/setup-test.sh installs Debian's coturn when turnserver is missing)";

interface Turnserver {
  port: number;
  /** Everything the server logged so far (stdout and stderr). */
  log: () => string;
  stop: () => Promise<void>;
}

async function waitForTcp(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`turnserver exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`turnserver did not listen on 127.0.0.1:${port} within 10 s:\n${log()}`);
}

/** Starts turnserver with `args` (a config file and/or options); logs go to stdout, captured. */
async function startTurnserver(dir: string, args: (port: number, relayMin: number) => string[]): Promise<Turnserver> {
  const bin = requireTool('turnserver', HOW);
  const port = await freeTcpUdpPort();
  // A relay range of its own near the listening port, so parallel runs do not collide.
  const relayMin = 20_000 + ((port * 7) % 40_000);
  const child = spawn(bin, args(port, relayMin), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => { text += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { text += d.toString(); });
  const log = () => text;
  await waitForTcp(port, child, log);
  return {
    port,
    log,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => { clearTimeout(timer); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}

interface ClientResult {
  code: number;
  output: string;
}

/** turnutils_uclient: one client pair (-y: each relays to the other's allocation), 2 messages each, no RTCP. */
function uclient(port: number, username: string, password: string): Promise<ClientResult> {
  const bin = requireTool('turnutils_uclient', HOW);
  return new Promise((resolve) => {
    execFile(bin, ['-p', String(port), '-u', username, '-w', password, '-n', '2', '-m', '1', '-y', '-c', '127.0.0.1'], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

const sessionLines = (log: string, username: string) => log.split('\n').filter((l) => l.includes(`user <${username}>`));

describe('coturn with REST credentials from shared/turn.ts (test configuration)', () => {
  let dir: string;
  let server: Turnserver;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'geo-sfu-coturn-'));
    server = await startTurnserver(dir, (port, relayMin) => {
      const conf = join(dir, 'turnserver.conf');
      writeFileSync(conf, [
        `listening-port=${port}`,
        'listening-ip=127.0.0.1',
        'relay-ip=127.0.0.1',
        `min-port=${relayMin}`,
        `max-port=${relayMin + 100}`,
        'use-auth-secret',
        `static-auth-secret=${SECRET}`,
        `realm=${REALM}`,
        'fingerprint',
        // The test's client pair relays between two loopback allocations; never in production.
        'allow-loopback-peers',
        'no-cli',
        'no-tls',
        'no-dtls',
        'verbose',
        'simple-log',
        'log-file=stdout',
        `pidfile=${join(dir, 'turnserver.pid')}`,
        `userdb=${join(dir, 'turndb')}`,
        '',
      ].join('\n'));
      return ['-c', conf];
    });
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const creds = (overrides: Partial<Parameters<typeof turnCredentials>[0]> = {}) =>
    turnCredentials({ secret: SECRET, ttlSeconds: 300, participantId: 'alice', nowMs: Date.now(), urls: `turn:127.0.0.1:${server.port}`, ...overrides });

  it('valid credentials: both allocations succeed and relay every message', async () => {
    const ice = creds({ participantId: `alice-${Date.now()}` });
    const r = await uclient(server.port, ice.username, ice.credential);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/tot_send_msgs=4, tot_recv_msgs=4/);
    expect(r.output).toMatch(/Total lost packets 0 /);
    expect(r.output).not.toMatch(/ERROR/);
    const lines = sessionLines(server.log(), ice.username);
    expect(lines.filter((l) => /incoming packet ALLOCATE processed, success/.test(l)).length, server.log()).toBeGreaterThanOrEqual(2);
  });

  it('credentials returned by POST /allocate for the edge region work against coturn', async () => {
    const router = await startRouter(testConfig('memory', { turnSecret: SECRET, turnUrls: { 'eu-west': [`turn:127.0.0.1:${server.port}`], '*': ['turn:198.51.100.1:3478'] } }));
    const nodes = new FakeNodes(router.url, router.config.clusterSecret);
    try {
      await nodes.start(200);
      await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
      await router.app.registry.refresh();
      const res = await allocate(router.url, { roomId: 'turn-room', participantId: `bob-${Date.now()}`, latencies: { 'us-west': 140, 'us-east': 80, 'eu-west': 5, apac: 180 } });
      expect(res.status).toBe(200);
      const turn = res.body.iceServers.find((s) => String(s.urls).startsWith('turn:'))!;
      expect(turn.urls).toEqual([`turn:127.0.0.1:${server.port}`]);
      const [expiry, participant] = turn.username!.split(':');
      expect(Number(expiry) - Date.now() / 1000).toBeGreaterThan(3_000);
      expect(participant).toBe(res.body.participantId);
      const r = await uclient(server.port, turn.username!, turn.credential!);
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/tot_send_msgs=4, tot_recv_msgs=4/);
    } finally {
      await nodes.close();
      await router.close();
    }
  });

  it('a credential minted with another secret is refused (401)', async () => {
    const ice = creds({ participantId: `mallory-${Date.now()}`, secret: `${SECRET}-not-the-server-one` });
    const r = await uclient(server.port, ice.username, ice.credential);
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toMatch(/Cannot complete Allocation/);
    const lines = sessionLines(server.log(), ice.username);
    expect(lines.some((l) => /error 401: Unauthorized/.test(l)), server.log()).toBe(true);
    expect(lines.some((l) => /ALLOCATE processed, success/.test(l))).toBe(false);
  });

  it('an expired username is refused even with the right HMAC', async () => {
    // Minted 10 minutes ago with a 5 minute lifetime: expired 5 minutes ago.
    const ice = creds({ participantId: `late-${Date.now()}`, nowMs: Date.now() - 600_000 });
    expect(Number(ice.username.split(':')[0])).toBeLessThan(Date.now() / 1000);
    const r = await uclient(server.port, ice.username, ice.credential);
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toMatch(/Cannot complete Allocation/);
    const lines = sessionLines(server.log(), ice.username);
    expect(lines.some((l) => /error 401: Unauthorized/.test(l)), server.log()).toBe(true);
    expect(lines.some((l) => /ALLOCATE processed, success/.test(l))).toBe(false);
  });

  it("a valid credential does not work for another participant's username", async () => {
    const ice = creds({ participantId: `bob-${Date.now()}` });
    const forged = ice.username.replace(/:bob-/, ':eve-');
    const r = await uclient(server.port, forged, ice.credential);
    expect(r.code, r.output).not.toBe(0);
    expect(sessionLines(server.log(), forged).some((l) => /ALLOCATE processed, success/.test(l))).toBe(false);
  });
});

describe('shipped infra/coturn/turnserver.conf, run on loopback', () => {
  let dir: string;
  let server: Turnserver;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'geo-sfu-coturn-prod-'));
    // The production file as shipped; only the addresses, ports and files are moved to this test's
    // loopback sandbox, and TLS is off (no certificate here). No allow-loopback-peers.
    server = await startTurnserver(dir, (port, relayMin) => [
      '-c', join(INFRA, 'coturn', 'turnserver.conf'),
      `--listening-port=${port}`,
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--min-port=${relayMin}`,
      `--max-port=${relayMin + 100}`,
      `--static-auth-secret=${SECRET}`,
      '--no-tls',
      '--no-dtls',
      '--verbose',
      `--pidfile=${join(dir, 'turnserver.pid')}`,
      `--userdb=${join(dir, 'turndb')}`,
    ]);
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates REST credentials but refuses to relay to a loopback peer (403 Forbidden IP)', async () => {
    const log = server.log();
    for (const range of ['10.0.0.0-10.255.255.255', '127.0.0.0-127.255.255.255', '192.168.0.0-192.168.255.255', 'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']) {
      expect(log, `coturn did not load denied-peer-ip ${range}`).toContain(`Black listing: ${range}`);
    }
    expect(log).not.toMatch(/allow_loopback_peers/);

    const ice = turnCredentials({ secret: SECRET, ttlSeconds: 300, participantId: `prod-${Date.now()}`, nowMs: Date.now(), urls: `turn:127.0.0.1:${server.port}` });
    const r = await uclient(server.port, ice.username, ice.credential);
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toMatch(/403 \(Forbidden IP\)/);
    const lines = sessionLines(server.log(), ice.username);
    expect(lines.some((l) => /ALLOCATE processed, success/.test(l)), server.log()).toBe(true);
    expect(lines.some((l) => /error 403: Forbidden IP/.test(l)), server.log()).toBe(true);
  });
});
