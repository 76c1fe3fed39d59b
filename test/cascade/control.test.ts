/**
 * The agent↔agent cascade control plane: signed (unsigned, forged and replayed calls refused),
 * SRTP keys never in clear (sealed with AES-256-GCM under HKDF(clusterSecret, 'geo-sfu pipe')),
 * and the room-nodes query the agents poll.
 */
import { createCipheriv, hkdfSync } from 'node:crypto';
import Fastify from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { derivePipeKey, seal, unseal } from '../../region-agent/cascade/index.ts';
import { RouterClient } from '../../region-agent/router-client.ts';
import { AJV_OPTIONS } from '../../shared/http.ts';
import { keepRawJsonBody, requireSignature } from '../../shared/signed-http.ts';
import { signRequest } from '../../shared/signed-request.ts';
import { waitUntil } from '../sfu/helpers/rtp.ts';
import { Cluster, Participant, SECRET, type AgentNode } from './harness.ts';
import { controlPlane as cp } from '../../shared/control-plane.ts';

describe('cascade control plane', () => {
  const bodies: string[] = [];
  const cluster = new Cluster({
    enableSrtp: true,
    // Record every cascade request and answer body, on both agents.
    configureApp: (_nodeId, app) => {
      app.addHook('onSend', async (req, _reply, payload) => {
        if (req.url.startsWith('/v1/cascade/')) {
          if (req.rawBody) bodies.push(req.rawBody);
          if (typeof payload === 'string') bodies.push(payload);
        }
        return payload;
      });
    },
  });
  let us: AgentNode;
  let eu: AgentNode;
  const people: Participant[] = [];

  beforeAll(async () => {
    us = await cluster.add('us-west-1', 'us-west');
    eu = await cluster.add('eu-west-1', 'eu-west');
    people.push(await Participant.join(us, 'sec', 'alice'), await Participant.join(eu, 'sec', 'bruno'));
    await waitUntil(() => eu.room('sec')!.remotePeers.has('alice') && us.room('sec')!.remotePeers.has('bruno'), 10_000, 'piped');
  }, 30_000);

  afterAll(async () => {
    for (const p of people) p.leave();
    await cluster.close();
  });

  it('never sends SRTP keys in clear: the open request carries them sealed', async () => {
    // eu-west-1 < us-west-1: eu initiates, so it *sent* the open; us-west answered. Check both pipes' keys.
    const keys = [us, eu].map((n) => n.cascade!.link('sec', n === us ? 'eu-west-1' : 'us-west-1')!.localEndpoint.srtpParameters!.keyBase64);
    expect(keys.every((k) => k.length > 20)).toBe(true);
    expect(bodies.filter((b) => b.includes('"state"')).length).toBeGreaterThan(0);
    expect(bodies.filter((b) => b.includes('"sealed"')).length).toBe(2); // the open and its answer
    for (const body of bodies) for (const key of keys) expect(body.includes(key)).toBe(false);
    // The key, sealed, opens with the cluster key and the link's additional data only.
    const k = derivePipeKey(SECRET);
    const sealed = seal(k, { keyBase64: keys[0] }, 'open|sec|a|b|l1');
    expect(sealed.includes(keys[0]!)).toBe(false);
    expect(unseal<{ keyBase64: string }>(k, sealed, 'open|sec|a|b|l1').keyBase64).toBe(keys[0]);
    expect(() => unseal(k, sealed, 'open|other-room|a|b|l1')).toThrow();
    expect(() => unseal(derivePipeKey('another-secret-another-secret-0123456789'), sealed, 'open|sec|a|b|l1')).toThrow();
  });

  it('the pipe key is HKDF-SHA256(clusterSecret, info "geo-sfu pipe") and the cipher AES-256-GCM', () => {
    const key = Buffer.from(hkdfSync('sha256', SECRET, Buffer.alloc(0), 'geo-sfu pipe', 32));
    expect(derivePipeKey(SECRET).equals(key)).toBe(true);
    const sealed = seal(key, { x: 1 }, 'aad');
    const [v, iv, ct, tag] = sealed.split('.');
    expect(v).toBe('v1');
    const c = createCipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'));
    c.setAAD(Buffer.from('aad'));
    expect(Buffer.concat([c.update('{"x":1}'), c.final()]).toString('base64url')).toBe(ct);
    expect(c.getAuthTag().toString('base64url')).toBe(tag);
  });

  it('refuses unsigned, forged and replayed calls', async () => {
    const body = JSON.stringify({ roomId: 'sec', fromNodeId: 'zz-node-1', toNodeId: 'eu-west-1' });
    const post = (headers: Record<string, string>, path: string = cp.cascadeKick.path) =>
      request(`${eu.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const unsigned = await post({});
    expect(unsigned.statusCode).toBe(401);
    expect(((await unsigned.body.json()) as { error: { code: string } }).error.code).toBe('SIGNATURE_MISSING');
    const forged = await post(signRequest('not-the-cluster-secret-0123456789abcdef', { method: 'POST', path: cp.cascadeKick.path, body }, Date.now()));
    expect(forged.statusCode).toBe(401);
    await forged.body.dump();
    const headers = signRequest(SECRET, { method: 'POST', path: cp.cascadeKick.path, body }, Date.now());
    const first = await post(headers);
    expect(first.statusCode).toBe(202);
    await first.body.dump();
    const replayed = await post(headers);
    expect(replayed.statusCode).toBe(401);
    expect(((await replayed.body.json()) as { error: { code: string } }).error.code).toBe('SIGNATURE_REPLAYED');
    // A signed open whose sealed payload was not sealed with the cluster key is refused.
    const open = JSON.stringify({ roomId: 'sec', fromNodeId: 'apac-1', toNodeId: 'eu-west-1', fromRegion: 'apac', linkId: 'x1', sealed: 'v1.AAAA.AAAA.AAAA' });
    const bad = await request(`${eu.url}${cp.cascadeOpen.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signRequest(SECRET, { method: 'POST', path: cp.cascadeOpen.path, body: open }, Date.now()) },
      body: open,
    });
    expect(bad.statusCode).toBe(409);
    expect(((await bad.body.json()) as { error: { code: string } }).error.code).toBe('BAD_SEAL');
    // An unknown link's sync is answered LINK_UNKNOWN (the caller then rebuilds).
    const sync = JSON.stringify({ roomId: 'sec', fromNodeId: 'us-west-1', toNodeId: 'eu-west-1', linkId: 'nope', state: { origin: { nodeId: 'us-west-1', region: 'us-west' }, producers: [], dataProducers: [] } });
    const unknown = await request(`${eu.url}${cp.cascadeSync.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signRequest(SECRET, { method: 'POST', path: cp.cascadeSync.path, body: sync }, Date.now()) },
      body: sync,
    });
    expect(unknown.statusCode).toBe(404);
    expect(((await unknown.body.json()) as { error: { code: string } }).error.code).toBe('LINK_UNKNOWN');
    // The mesh is untouched by all this.
    expect(eu.cascade!.links()).toHaveLength(1);
  });

  it('RouterClient.roomNodes() calls the router’s signed POST /v1/nodes/room-nodes', async () => {
    const app = Fastify({ logger: false, ajv: AJV_OPTIONS });
    keepRawJsonBody(app);
    const seen: unknown[] = [];
    app.post('/v1/nodes/room-nodes', { preValidation: requireSignature(SECRET, 30_000) }, async (req, reply) => {
      seen.push(req.body);
      const node = (nodeId: string) => ({ version: 3, nodes: [{ nodeId, region: 'us-west', controlUrl: 'http://127.0.0.1:1', state: 'alive' }] });
      // As JSON text: in an object literal, a `__proto__` key would set the prototype instead.
      return reply.type('application/json').send(`{"rooms":{"sec":${JSON.stringify(node('us-west-1'))},"__proto__":${JSON.stringify(node('us-west-2'))}}}`);
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const address = app.server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const client = (clusterSecret: string) => new RouterClient({ routerUrl: url, nodeId: 'eu-west-1', clusterSecret, timeoutMs: 2_000, now: Date.now });
      const answer = await client(SECRET).roomNodes(['sec']);
      expect(answer.get('sec')?.nodes[0]?.nodeId).toBe('us-west-1');
      expect(answer.get('sec')?.version).toBe(3);
      // A room may be named like an Object.prototype key; only the router's answer says who serves it.
      expect(answer.get('__proto__')?.nodes[0]?.nodeId).toBe('us-west-2');
      expect(answer.get('constructor')).toBeUndefined();
      expect(seen).toEqual([{ nodeId: 'eu-west-1', roomIds: ['sec'] }]);
      await expect(client('wrong-secret-wrong-secret-0123456789').roomNodes(['sec'])).rejects.toThrow(/401/);
    } finally {
      await app.close();
    }
  });
});
