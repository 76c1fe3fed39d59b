import { type ChildProcess, fork } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { PipeRelays, type PipeRelayAnswer, type PipeRelayRequest } from '../../infra/embedded/pipe-relays.ts';
import type { WanProfile } from '../../infra/embedded/wan-profile.ts';
import { waitUntilQuiet } from '../utils/wait.ts';

/**
 * The launcher's media relays on their own: a real child process asks over its IPC channel, as
 * infra/embedded/relayed-agent.ts does for each side of a pipe, and real UDP crosses the relay
 * with half the profile's inter-region RTT.
 */
const PROFILE: WanProfile = { interRegionRttMs: { 'us-west': { 'eu-west': 120 } } };
const REGION: Record<string, string> = { 'us-west-1': 'us-west', 'eu-west-1': 'eu-west' };

let relays: PipeRelays | null = null;
let child: ChildProcess | null = null;
const sockets: Socket[] = [];
afterEach(() => {
  child?.kill();
  relays?.close();
  for (const s of sockets.splice(0)) s.close();
});

/** A child that forwards each request line from the parent's `ask` messages to the parent and reports the answers back. */
function startChild(): ChildProcess {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-relays-'));
  const script = join(dir, 'child.mjs');
  writeFileSync(script, `process.on('message', (m) => { if (m.ask) process.send(m.ask); else process.send({ answered: m }); });\n`);
  return fork(script, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
}

function ask(c: ChildProcess, request: PipeRelayRequest): Promise<PipeRelayAnswer> {
  return new Promise((resolve) => {
    const onMessage = (m: { answered?: PipeRelayAnswer }) => {
      if (m.answered?.id !== request.id) return;
      c.off('message', onMessage);
      resolve(m.answered);
    };
    c.on('message', onMessage);
    c.send({ ask: request });
  });
}

function udp(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
}

it('both sides of a pipe get the same relay; packets cross it with half the inter-region RTT each way', async () => {
  relays = new PipeRelays(PROFILE, (nodeId) => REGION[nodeId]!);
  child = startChild();
  // The launcher answers requests from the child only (its own messages are forwarded back).
  relays.serve(child);
  const [west, east] = await Promise.all([udp(), udp()]);
  const endpoint = (s: Socket) => ({ ip: '127.0.0.1', port: s.address().port });

  const base = { type: 'geo-sfu:pipe-relay' as const, roomId: 'r1' };
  const forWest = await ask(child, { ...base, id: 1, localNodeId: 'us-west-1', remoteNodeId: 'eu-west-1', ...endpoint(east) });
  const forEast = await ask(child, { ...base, id: 2, localNodeId: 'eu-west-1', remoteNodeId: 'us-west-1', ...endpoint(west) });
  if ('error' in forWest || 'error' in forEast) throw new Error('relay refused');
  // Each side is told to send to a relay socket, not to the other side.
  expect(forWest.port).not.toBe(endpoint(east).port);
  expect(forEast.port).not.toBe(endpoint(west).port);
  expect(forWest.port).not.toBe(forEast.port);

  const listed = relays.list();
  expect(listed).toHaveLength(1);
  expect(listed[0]).toMatchObject({ roomId: 'r1', nodes: ['eu-west-1', 'us-west-1'], regions: ['eu-west', 'us-west'], oneWayDelayMs: 60 });

  // A round trip west → east → west through the relay.
  const started = performance.now();
  const atEast = new Promise<Buffer>((resolve) => east.once('message', (msg) => resolve(msg)));
  west.send(Buffer.from('ping'), forWest.port, forWest.ip);
  const ping = await atEast;
  const oneWay = performance.now() - started;
  const back = new Promise<Buffer>((resolve) => west.once('message', (msg) => resolve(msg)));
  east.send(Buffer.from('pong'), forEast.port, forEast.ip);
  expect((await back).toString()).toBe('pong');
  const roundTrip = performance.now() - started;
  console.log(`through the relay: one way ${oneWay.toFixed(1)} ms, round trip ${roundTrip.toFixed(1)} ms (profile RTT 120 ms)`);
  expect(ping.toString()).toBe('ping');
  expect(oneWay).toBeGreaterThanOrEqual(59);
  expect(roundTrip).toBeGreaterThanOrEqual(119);
  expect(roundTrip).toBeLessThan(400);
  const { stats } = listed[0]!.relay;
  expect(stats.ab.forwarded + stats.ba.forwarded).toBe(2);
  expect(stats.ab.heldTotalMs + stats.ba.heldTotalMs).toBeGreaterThanOrEqual(119);
});

it('ignores messages that are not relay requests', async () => {
  relays = new PipeRelays(PROFILE, (nodeId) => REGION[nodeId]!);
  child = startChild();
  relays.serve(child);
  const answers: unknown[] = [];
  child.on('message', (m: { answered?: unknown }) => m.answered && answers.push(m.answered));
  child.send({ ask: { type: 'something-else', id: 1 } });
  child.send({ ask: 'hello' });
  await new Promise((r) => setTimeout(r, 300));
  expect(answers).toEqual([]);
  expect(relays.list()).toEqual([]);
});

it('applies the profile’s inter-region loss and jitter to the pipe media: about that share of packets lost, the rest delayed within ± the jitter and reordered', async () => {
  const lossPct = 10;
  const jitterMs = 20;
  relays = new PipeRelays({ ...PROFILE, interRegionLossPct: { 'eu-west': { 'us-west': lossPct } }, interRegionJitterMs: jitterMs }, (nodeId) => REGION[nodeId]!);
  child = startChild();
  relays.serve(child);
  const [west, east] = await Promise.all([udp(), udp()]);
  const endpoint = (s: Socket) => ({ ip: '127.0.0.1', port: s.address().port });
  const base = { type: 'geo-sfu:pipe-relay' as const, roomId: 'r2' };
  const forWest = await ask(child, { ...base, id: 1, localNodeId: 'us-west-1', remoteNodeId: 'eu-west-1', ...endpoint(east) });
  await ask(child, { ...base, id: 2, localNodeId: 'eu-west-1', remoteNodeId: 'us-west-1', ...endpoint(west) });
  if ('error' in forWest) throw new Error('relay refused');
  expect(relays.list()[0]).toMatchObject({ oneWayDelayMs: 60, jitterMs, lossPct });

  const sent = 2_000;
  const arrived: number[] = [];
  east.on('message', (msg) => arrived.push(msg.readUInt32BE(0)));
  for (let seq = 0; seq < sent; seq++) {
    const packet = Buffer.alloc(4);
    packet.writeUInt32BE(seq);
    west.send(packet, forWest.port, forWest.ip);
    if (seq % 20 === 19) await new Promise((r) => setTimeout(r, 1));
  }
  // Side a is the lower node id (eu-west-1): west → east is b → a.
  const stats = relays.list()[0]!.relay.stats.ba;
  await waitUntilQuiet(() => arrived.length, 60 + jitterMs + 500);
  const reordered = arrived.filter((seq, i) => i > 0 && seq < arrived[i - 1]!).length;
  // The relay's own losses, over what reached it: on a loaded machine the kernel may also drop a
  // datagram before the relay reads it or before the test does, which is not the emulation's doing.
  const reachedRelay = stats.packets + stats.dropped;
  const lostShare = stats.dropped / reachedRelay;
  const meanHeld = stats.heldTotalMs / stats.forwarded;
  console.log(`${sent} packets at ${lossPct} % loss, ±${jitterMs} ms jitter: ${(lostShare * 100).toFixed(1)} % of the ${reachedRelay} that reached the relay lost by it (${sent - reachedRelay} lost before it, ${stats.forwarded - arrived.length} after it), ${reordered} arrived after a later one, held ${meanHeld.toFixed(1)} ms on average (max ${stats.heldMaxMs.toFixed(1)} ms; delay 60 ms)`);
  // Binomial: 10 % of n has a standard deviation of sqrt(0.09 / n) (0.7 % for 2,000); the bounds are 5 of them.
  const sigma = Math.sqrt((0.1 * 0.9) / reachedRelay);
  expect(reachedRelay).toBeGreaterThan(sent / 2);
  expect(lostShare).toBeGreaterThan(0.1 - 5 * sigma);
  expect(lostShare).toBeLessThan(0.1 + 5 * sigma);
  // Everything the relay accepted it sent on, and nothing more arrived.
  expect(stats.forwarded).toBe(stats.packets);
  expect(arrived.length).toBeLessThanOrEqual(stats.forwarded);
  // Uniform ± jitter around the delay: reordering, and a mean near the delay (timer lateness only adds).
  expect(reordered).toBeGreaterThan(0);
  expect(meanHeld).toBeGreaterThanOrEqual(60 - 3);
  expect(new Set(arrived).size).toBe(arrived.length);
});
