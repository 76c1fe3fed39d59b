import { createSocket, type Socket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { rtcpNacks, UdpRelay } from '../../infra/embedded/udp-relay.ts';

/** A receiver report with no blocks (8 bytes) and a generic NACK with the given FCI entries [pid, blp]. */
function compound(entries: Array<[number, number]>): Buffer {
  const rr = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]);
  const nack = Buffer.alloc(12 + 4 * entries.length);
  nack[0] = 0x81; // V=2, FMT=1 (generic NACK)
  nack[1] = 205; // RTPFB
  nack.writeUInt16BE(nack.length / 4 - 1, 2);
  nack.writeUInt32BE(1, 4);
  nack.writeUInt32BE(0x1234, 8);
  for (const [i, [pid, blp]] of entries.entries()) {
    nack.writeUInt16BE(pid, 12 + 4 * i);
    nack.writeUInt16BE(blp, 14 + 4 * i);
  }
  return Buffer.concat([rr, nack]);
}

let relay: UdpRelay | null = null;
const sockets: Socket[] = [];
afterEach(() => {
  relay?.close();
  for (const s of sockets.splice(0)) s.close();
});

it('counts generic NACKs of plain compound RTCP and the packets they ask for; not SRTCP, not RTP', () => {
  // One entry: packet 100, plus 101 and 103 from the bitmask → 3; a second entry with none → 1.
  expect(rtcpNacks(compound([[100, 0b101], [200, 0]]))).toEqual({ nacks: 1, packets: 4 });
  expect(rtcpNacks(compound([[7, 0xffff]]))).toEqual({ nacks: 1, packets: 17 });
  // SRTCP: the E-flag and index and the auth tag follow the (encrypted) compound: does not parse to its end.
  expect(rtcpNacks(Buffer.concat([compound([[100, 0]]), Buffer.alloc(14)]))).toEqual({ nacks: 0, packets: 0 });
  // A length running past the packet, and a packet that is not RTP/RTCP at all.
  const truncated = compound([[100, 0]]).subarray(0, 16);
  expect(rtcpNacks(truncated)).toEqual({ nacks: 0, packets: 0 });
  expect(rtcpNacks(Buffer.from('not rtcp at all'))).toEqual({ nacks: 0, packets: 0 });
});

it('a relay counts the NACKs it forwards, per direction', async () => {
  relay = await UdpRelay.open({ ab: { delayMs: 0 }, ba: { delayMs: 0 } });
  const bind = async () => {
    const s = createSocket('udp4');
    sockets.push(s);
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    return s;
  };
  const [a, b] = await Promise.all([bind(), bind()]);
  relay.setTarget('a', { ip: '127.0.0.1', port: a.address().port });
  relay.setTarget('b', { ip: '127.0.0.1', port: b.address().port });
  const arrived = new Promise<Buffer>((resolve) => b.once('message', resolve));
  const towardB = relay.facing('a');
  a.send(compound([[100, 0b11]]), towardB.port, towardB.ip);
  expect((await arrived).length).toBe(24);
  expect(relay.stats.ab).toMatchObject({ nacks: 1, nackedPackets: 3, forwarded: 1 });
  expect(relay.stats.ba).toMatchObject({ nacks: 0, nackedPackets: 0 });
});
