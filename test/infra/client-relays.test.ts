import { createSocket, type Socket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { ClientRelays } from '../../infra/embedded/client-relays.ts';
import type { WanProfile } from '../../infra/embedded/wan-profile.ts';
import { waitUntilQuiet } from '../utils/wait.ts';

/**
 * The launcher's client media relays on their own, with real UDP: a socket stands for an agent's
 * WebRtcServer on 127.0.0.1, others for clients sending to the address the agent would announce.
 */
const PROFILE: WanProfile = { interRegionRttMs: { 'us-west': { 'eu-west': 120 } }, clientRttMs: { 'us-west': 40, 'eu-west': 10 }, clientJitterMs: { 'us-west': 0 } };
const PLAN = [
  { nodeId: 'us-west-1', region: 'us-west' },
  { nodeId: 'us-west-2', region: 'us-west' },
  { nodeId: 'eu-west-1', region: 'eu-west' },
];

let relays: ClientRelays | null = null;
const sockets: Socket[] = [];
afterEach(() => {
  relays?.close();
  for (const s of sockets.splice(0)) s.close();
});

function udp(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
}

/** An "SFU" that answers every packet with `echo:` + the packet, to its sender. */
async function echoServer(): Promise<{ socket: Socket; seen: Array<{ from: string; msg: string }> }> {
  const socket = await udp();
  const seen: Array<{ from: string; msg: string }> = [];
  socket.on('message', (msg, rinfo) => {
    seen.push({ from: `${rinfo.address}:${rinfo.port}`, msg: msg.toString() });
    socket.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address);
  });
  return { socket, seen };
}

it('gives an address only to the agents of regions with client impairments, one each', () => {
  relays = new ClientRelays(PROFILE, PLAN);
  expect(relays.active).toBe(true);
  const [a, b] = [relays.addressOf('us-west-1'), relays.addressOf('us-west-2')];
  expect(a).toMatch(/^127\.([1-9]\d*)\.\d+\.1$/);
  expect(b).toMatch(/^127\.([1-9]\d*)\.\d+\.2$/);
  expect(relays.addressOf('eu-west-1')).toBeUndefined();
  expect(new ClientRelays({ interRegionRttMs: PROFILE.interRegionRttMs, clientRttMs: { 'us-west': 40 } }, PLAN).active).toBe(false);
});

it('is a NAT in front of the WebRTC port: each client its own upstream tuple, replies back to each, half the client RTT each way, counted per direction', async () => {
  relays = new ClientRelays(PROFILE, PLAN);
  const server = await echoServer();
  const port = server.socket.address().port;
  await relays.setSockets('us-west-1', [{ ip: '127.0.0.1', port }]);
  const [view] = relays.list();
  const ip = relays.addressOf('us-west-1')!;
  expect(view).toMatchObject({ nodeId: 'us-west-1', region: 'us-west', oneWayDelayMs: 20, jitterMs: 0, lossPct: 0 });
  // Clients send to the announced address on the WebRtcServer's own port.
  expect(view!.relay.address).toEqual({ ip, port });
  expect(view!.relay.target).toEqual({ ip: '127.0.0.1', port });

  const clients = await Promise.all([udp(), udp()]);
  const replies = clients.map((c) => {
    const got: Array<{ msg: string; from: string }> = [];
    c.on('message', (msg, rinfo) => got.push({ msg: msg.toString(), from: `${rinfo.address}:${rinfo.port}` }));
    return got;
  });
  const started = performance.now();
  clients[0]!.send('a1', port, ip);
  clients[1]!.send('b1', port, ip);
  clients[0]!.send('a2', port, ip);
  await waitFor(() => replies[0]!.length === 2 && replies[1]!.length === 1);
  const roundTrip = performance.now() - started;
  console.log(`client → relay → server → relay → client: ${roundTrip.toFixed(1)} ms (client RTT 40 ms)`);
  expect(roundTrip).toBeGreaterThanOrEqual(39);
  // Each client got its own replies, from the address it sent to.
  expect(replies[0]!.map((r) => r.msg)).toEqual(['echo:a1', 'echo:a2']);
  expect(replies[1]!.map((r) => r.msg)).toEqual(['echo:b1']);
  for (const r of [...replies[0]!, ...replies[1]!]) expect(r.from).toBe(`${ip}:${port}`);
  // The server saw two tuples (one per client), both on loopback, neither a client's own address.
  const tuples = new Set(server.seen.map((s) => s.from));
  expect(tuples.size).toBe(2);
  for (const t of tuples) expect(t).toMatch(/^127\.0\.0\.1:\d+$/);
  for (const c of clients) expect(tuples.has(`127.0.0.1:${c.address().port}`)).toBe(false);
  expect(view!.relay.clients).toEqual({ live: 2, seen: 2 });

  const { stats } = view!.relay;
  expect([stats.up.packets, stats.up.dropped, stats.up.bytes]).toEqual([3, 0, 6]);
  expect([stats.down.packets, stats.down.dropped, stats.down.bytes]).toEqual([3, 0, 21]);
  expect(stats.up.heldTotalMs).toBeGreaterThanOrEqual(3 * 19);
  expect(relays.totals('us-west')).toEqual({ up: { packets: 3, bytes: 6, dropped: 0 }, down: { packets: 3, bytes: 21, dropped: 0 } });
  expect(relays.totals('eu-west')).toEqual({ up: { packets: 0, bytes: 0, dropped: 0 }, down: { packets: 0, bytes: 0, dropped: 0 } });
});

it('drops about clientLossPct of the packets in each direction, and jitters them ± clientJitterMs around the delay', async () => {
  relays = new ClientRelays({ ...PROFILE, clientLossPct: 10, clientJitterMs: 15 }, PLAN);
  const server = await echoServer();
  const port = server.socket.address().port;
  await relays.setSockets('us-west-1', [{ ip: '127.0.0.1', port }]);
  const ip = relays.addressOf('us-west-1')!;
  const client = await udp();
  const arrived: number[] = [];
  client.on('message', (msg) => arrived.push(msg.readUInt32BE(5)));
  const sent = 2_000;
  for (let seq = 0; seq < sent; seq++) {
    const packet = Buffer.alloc(4);
    packet.writeUInt32BE(seq);
    client.send(packet, port, ip);
    if (seq % 20 === 19) await new Promise((r) => setTimeout(r, 1));
  }
  const { relay } = relays.list()[0]!;
  await waitUntilQuiet(() => arrived.length, 20 + 15 + 500);
  const share = (d: { packets: number; dropped: number }) => d.dropped / (d.packets + d.dropped);
  const reordered = arrived.filter((seq, i) => i > 0 && seq < arrived[i - 1]!).length;
  const { up, down } = relay.stats;
  console.log(
    `${sent} packets at 10 % loss, ±15 ms jitter: up ${(share(up) * 100).toFixed(1)} % of ${up.packets + up.dropped} dropped, down ${(share(down) * 100).toFixed(1)} % of ${down.packets + down.dropped}; ${arrived.length} echoes back, ${reordered} after a later one; held up ${(up.heldTotalMs / up.forwarded).toFixed(1)} ms on average (max ${up.heldMaxMs.toFixed(1)}; delay 20)`,
  );
  for (const d of [up, down]) {
    const sigma = Math.sqrt(0.09 / (d.packets + d.dropped));
    expect(d.packets + d.dropped).toBeGreaterThan(sent / 3);
    expect(share(d)).toBeGreaterThan(0.1 - 5 * sigma);
    expect(share(d)).toBeLessThan(0.1 + 5 * sigma);
    expect(d.forwarded).toBe(d.packets);
  }
  // What came back went down from the echoes of what went up.
  expect(down.packets + down.dropped).toBeLessThanOrEqual(up.packets);
  expect(reordered).toBeGreaterThan(0);
  expect(up.heldMaxMs).toBeGreaterThan(20);
  expect(up.heldTotalMs / up.forwarded).toBeGreaterThanOrEqual(20 - 3);
});

it('follows the agent’s reports: a new port gets a relay, a port no longer listed loses its own; refuses agents of other regions', async () => {
  relays = new ClientRelays(PROFILE, PLAN);
  const [first, second] = await Promise.all([echoServer(), echoServer()]);
  const p1 = first.socket.address().port;
  const p2 = second.socket.address().port;
  await relays.setSockets('us-west-1', [{ ip: '127.0.0.1', port: p1 }]);
  const before = relays.list()[0]!.relay;
  // Reported again with one more port (a worker replaced, say): the first relay is kept.
  await relays.setSockets('us-west-1', [{ ip: '127.0.0.1', port: p1 }, { ip: '127.0.0.1', port: p2 }]);
  expect(relays.list().map((v) => v.relay.address.port).sort()).toEqual([p1, p2].sort());
  expect(relays.list().find((v) => v.relay.address.port === p1)!.relay).toBe(before);
  await relays.setSockets('us-west-1', [{ ip: '127.0.0.1', port: p2 }]);
  expect(relays.list().map((v) => v.relay.address.port)).toEqual([p2]);
  // The closed relay's port on the agent's address is free again.
  await relays.setSockets('us-west-1', [{ ip: '127.0.0.1', port: p1 }]);
  expect(relays.list().map((v) => v.relay.address.port)).toEqual([p1]);
  await expect(relays.setSockets('eu-west-1', [{ ip: '127.0.0.1', port: p2 }])).rejects.toThrow(/not emulated/);
  // A port taken on the agent's address is an error the agent hears about (it then fails to start).
  const squatter = createSocket('udp4');
  sockets.push(squatter);
  const ip2 = relays.addressOf('us-west-2')!;
  await new Promise<void>((resolve) => squatter.bind(0, ip2, () => resolve()));
  await expect(relays.setSockets('us-west-2', [{ ip: '127.0.0.1', port: squatter.address().port }])).rejects.toThrow(/cannot relay/);
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
