/** The shipped production coturn configuration never relays into private or loopback networks. */
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { readText } from './helpers.ts';

type Family = 4 | 6;
interface Range {
  family: Family;
  start: bigint;
  end: bigint;
  text: string;
}

function ipToBigInt(ip: string): { family: Family; value: bigint } {
  const family = isIP(ip);
  if (family === 4) {
    return { family, value: ip.split('.').reduce((acc, octet) => (acc << 8n) + BigInt(Number(octet)), 0n) };
  }
  if (family === 6) {
    let text = ip;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4?.[1]) {
      const n = ipToBigInt(v4[1]).value;
      text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
    }
    const [head = '', tail] = text.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    if (groups.length !== 8) throw new Error(`bad IPv6 ${ip}`);
    return { family, value: groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n) };
  }
  throw new Error(`not an IP address: ${ip}`);
}

function parseRange(text: string): Range {
  const [a = '', b] = text.split('-').map((s) => s.trim());
  const start = ipToBigInt(a);
  const end = b === undefined ? start : ipToBigInt(b);
  if (start.family !== end.family) throw new Error(`mixed families in ${text}`);
  return { family: start.family, start: start.value, end: end.value, text };
}

function cidr(text: string): Range {
  const [ip = '', bits] = text.split('/');
  const { family, value } = ipToBigInt(ip);
  const width = family === 4 ? 32n : 128n;
  const prefix = bits === undefined ? width : BigInt(Number(bits));
  const hostMask = (1n << (width - prefix)) - 1n;
  return { family, start: value & ~hostMask, end: (value & ~hostMask) | hostMask, text };
}

const conf = readText('infra/coturn/turnserver.conf');
const options = conf
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => {
    const eq = l.indexOf('=');
    return eq < 0 ? { name: l, value: '' } : { name: l.slice(0, eq).trim(), value: l.slice(eq + 1).trim() };
  });
const denied = options.filter((o) => o.name === 'denied-peer-ip').map((o) => parseRange(o.value));

describe('infra/coturn/turnserver.conf (production)', () => {
  it('parses: the IP helpers agree with known values', () => {
    expect(cidr('10.0.0.0/8')).toMatchObject({ start: 0x0a000000n, end: 0x0affffffn });
    const { start, end } = cidr('fe80::/10');
    expect(parseRange('fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toMatchObject({ family: 6, start, end });
    expect(ipToBigInt('::ffff:1.2.3.4').value).toBe((0xffffn << 32n) + 0x01020304n);
  });

  it.each(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '169.254.0.0/16', '::1', 'fc00::/7', 'fe80::/10'])(
    'denies relaying to %s',
    (block) => {
      const want = cidr(block);
      const covering = denied.find((r) => r.family === want.family && r.start <= want.start && r.end >= want.end);
      expect(covering, `no denied-peer-ip line covers ${block}; have: ${denied.map((r) => r.text).join(', ')}`).toBeDefined();
    },
  );

  it('does not allow loopback or multicast peers and uses REST credentials without a secret in the file', () => {
    const names = new Set(options.map((o) => o.name));
    expect(names.has('allow-loopback-peers')).toBe(false);
    expect(conf).not.toMatch(/^\s*allow-loopback-peers/m);
    expect(names.has('no-multicast-peers')).toBe(true);
    expect(names.has('use-auth-secret')).toBe(true);
    // The secret comes from the command line (a Kubernetes/compose secret), never from this file.
    expect(names.has('static-auth-secret')).toBe(false);
    expect(names.has('no-cli')).toBe(true);
    // No allowed-peer-ip line re-opens a denied range.
    expect(names.has('allowed-peer-ip')).toBe(false);
  });
});
