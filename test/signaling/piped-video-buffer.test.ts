/**
 * PipedVideoBuffers (protocol 1.4): the jitter buffer target of each consumer is its link's for
 * video piped in and none otherwise; a change of a link's target is told once to each connected
 * session consuming over it, a session waiting for its resume is told after it, and closed
 * consumers are forgotten. Sessions, peers and consumers are fakes (their shape as the class
 * reads them); the real path (agents, cascade, Chromium) is test/web/impaired-links.test.ts.
 */
import { describe, expect, it } from 'vitest';

import { PipedVideoBuffers } from '../../region-agent/signaling/piped-video-buffer.ts';
import type { Session } from '../../region-agent/signaling/sessions.ts';
import type { Peer, types as ms } from '../../sfu/index.ts';

interface FakeConsumer {
  id: string;
  producerId: string;
  kind: 'audio' | 'video';
  closed: boolean;
}

/** A room with local producers of `local` and producers piped in from `remote` (peer → origin node). */
function world(linkTargets: Map<string, number>) {
  const producers = new Map<string, { producer: { id: string }; peerId: string; remote: boolean }>();
  const remotePeers = new Map<string, { origin: { nodeId: string; region: string } }>();
  const room = { id: 'room-1', producers, remotePeers };
  const emitted: Array<{ session: string; event: string; msg: unknown }> = [];
  const sessions: Session[] = [];
  const addProducer = (producerId: string, peerId: string, originNodeId?: string) => {
    producers.set(producerId, { producer: { id: producerId }, peerId, remote: originNodeId !== undefined });
    if (originNodeId) remotePeers.set(peerId, { origin: { nodeId: originNodeId, region: originNodeId } });
  };
  const addSession = (name: string) => {
    const consumers = new Map<string, FakeConsumer>();
    const socket = { emit: (event: string, msg: unknown) => emitted.push({ session: name, event, msg }) };
    const session = { key: name, peer: { room, consumers } as unknown as Peer, socket } as unknown as Session;
    sessions.push(session);
    const consume = (consumerId: string, producerId: string, kind: 'audio' | 'video') => {
      const c: FakeConsumer = { id: consumerId, producerId, kind, closed: false };
      consumers.set(consumerId, c);
      return c as unknown as ms.Consumer;
    };
    return { session, consumers, consume };
  };
  const buffers = new PipedVideoBuffers({ all: () => sessions }, (roomId, nodeId) => (roomId === room.id ? (linkTargets.get(nodeId) ?? 0) : 0));
  return { buffers, addProducer, addSession, emitted };
}

describe('PipedVideoBuffers', () => {
  it('gives video piped in its link’s target, and local video and audio none', () => {
    const targets = new Map([['node-apac', 150]]);
    const w = world(targets);
    w.addProducer('cam-far', 'far', 'node-apac');
    w.addProducer('mic-far', 'far', 'node-apac');
    w.addProducer('cam-near', 'near');
    const s = w.addSession('alice');
    expect(w.buffers.told(s.session, s.session.peer!, s.consume('c1', 'cam-far', 'video'))).toBe(150);
    expect(w.buffers.told(s.session, s.session.peer!, s.consume('c2', 'mic-far', 'audio'))).toBe(0);
    expect(w.buffers.told(s.session, s.session.peer!, s.consume('c3', 'cam-near', 'video'))).toBe(0);
    // A producer the room no longer lists (closed meanwhile): none.
    expect(w.buffers.told(s.session, s.session.peer!, s.consume('c4', 'gone', 'video'))).toBe(0);
  });

  it('tells each change once, to the sessions consuming over that link only', () => {
    const targets = new Map([
      ['node-apac', 150],
      ['node-eu', 150],
    ]);
    const w = world(targets);
    w.addProducer('cam-apac', 'p-apac', 'node-apac');
    w.addProducer('cam-eu', 'p-eu', 'node-eu');
    const alice = w.addSession('alice');
    const bob = w.addSession('bob');
    w.buffers.told(alice.session, alice.session.peer!, alice.consume('a1', 'cam-apac', 'video'));
    w.buffers.told(alice.session, alice.session.peer!, alice.consume('a2', 'cam-eu', 'video'));
    w.buffers.told(bob.session, bob.session.peer!, bob.consume('b1', 'cam-eu', 'video'));
    w.buffers.refresh();
    expect(w.emitted).toEqual([]);
    // The apac link turned clean: alice's consumer of it is told, once.
    targets.set('node-apac', 0);
    w.buffers.refresh();
    w.buffers.refresh();
    expect(w.emitted).toEqual([{ session: 'alice', event: 'consumerJitterBuffer', msg: { consumerId: 'a1', producerId: 'cam-apac', jitterBufferTargetMs: 0 } }]);
    // The eu link changes: both sessions consuming over it.
    targets.set('node-eu', 200);
    w.buffers.refresh();
    expect(w.emitted.slice(1).map((e) => `${e.session} ${(e.msg as { consumerId: string }).consumerId} ${(e.msg as { jitterBufferTargetMs: number }).jitterBufferTargetMs}`).sort()).toEqual(['alice a2 200', 'bob b1 200']);
  });

  it('tells a session waiting for its resume after it, and forgets closed consumers', () => {
    const targets = new Map([['node-apac', 150]]);
    const w = world(targets);
    w.addProducer('cam-apac', 'p-apac', 'node-apac');
    const alice = w.addSession('alice');
    const socket = alice.session.socket;
    w.buffers.told(alice.session, alice.session.peer!, alice.consume('a1', 'cam-apac', 'video'));
    alice.session.socket = null;
    targets.set('node-apac', 0);
    w.buffers.refresh();
    expect(w.emitted).toHaveLength(0);
    alice.session.socket = socket;
    w.buffers.refresh();
    expect(w.emitted.map((e) => (e.msg as { jitterBufferTargetMs: number }).jitterBufferTargetMs)).toEqual([0]);
    // Closed (and gone from the peer): never told again, whatever its link does.
    alice.consumers.get('a1')!.closed = true;
    targets.set('node-apac', 150);
    w.buffers.refresh();
    alice.consumers.delete('a1');
    w.buffers.refresh();
    expect(w.emitted).toHaveLength(1);
  });

  it('keys everything by id in Maps: Object.prototype names are ids like any other', () => {
    const targets = new Map([['constructor', 150]]);
    const w = world(targets);
    w.addProducer('__proto__', 'toString', 'constructor');
    const s = w.addSession('hasOwnProperty');
    expect(w.buffers.told(s.session, s.session.peer!, s.consume('valueOf', '__proto__', 'video'))).toBe(150);
    targets.set('constructor', 0);
    w.buffers.refresh();
    expect(w.emitted).toEqual([{ session: 'hasOwnProperty', event: 'consumerJitterBuffer', msg: { consumerId: 'valueOf', producerId: '__proto__', jitterBufferTargetMs: 0 } }]);
  });
});
