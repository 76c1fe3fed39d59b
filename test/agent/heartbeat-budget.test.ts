import { Value } from '@sinclair/typebox/value';
import { expect, it } from 'vitest';
import { fitHeartbeat } from '../../region-agent/controller.ts';
import { BODY_LIMIT_BYTES } from '../../shared/http.ts';
import { Heartbeat, type ParticipantQuality, TRACKS_PER_PARTICIPANT } from '../../shared/schemas/index.ts';

/** A heartbeat's media part grows with the node's participants; the heartbeat must still land. */
const track = (i: number) => ({ direction: i % 2 ? 'out' : 'in', kind: 'video', producerId: `p-${i}-0000-0000-0000-000000000000`, paused: false, bitrateBps: 480_000, loss: 0.01, rttMs: 41.5, score: 10, spatialLayers: 3, temporalLayers: 3, spatialLayer: 1, temporalLayer: 2, width: 640, height: 360, frameRate: 30 }) as const;
const participant = (i: number): ParticipantQuality => ({
  roomId: `room-${i % 50}`,
  participantId: `participant-${i}`,
  packetLoss: 0.01,
  rttMs: 40,
  jitterMs: 3.2,
  bitrateBps: 1_000_000,
  inBps: 500_000,
  outBps: 500_000,
  tracks: Array.from({ length: TRACKS_PER_PARTICIPANT }, (_, t) => track(t)),
});
const heartbeat = (participants: number): Heartbeat => ({
  nodeId: 'west-1',
  seq: 1,
  load: { cpu: 0.5, memory: 0.2, participants, rooms: 50, transports: 2 * participants, producers: participants, consumers: participants, workers: 2 },
  draining: false,
  cordoned: false,
  maxParticipants: 1_000,
  peerRtt: {},
  quality: Array.from({ length: participants }, (_, i) => participant(i)),
  media: { inBps: 1e8, outBps: 1e8, links: [{ peerNodeId: 'east-1', peerRegion: 'us-east', rooms: 50, inBps: 1e7, outBps: 1e7 }] },
  reconnecting: [{ roomId: 'room-1', participantId: 'participant-1', forMs: 1200 }],
});
const bytes = (h: Heartbeat) => Buffer.byteLength(JSON.stringify(h));

it('keeps a small heartbeat whole, and fits a large one inside the router body limit: tracks go first, then participants', () => {
  const small = heartbeat(5);
  expect(Value.Check(Heartbeat, small)).toBe(true);
  expect(fitHeartbeat(small)).toBe(small);

  const large = heartbeat(2_000);
  const fitted = fitHeartbeat(large);
  console.log(`heartbeat of 2000 participants: ${bytes(large)} bytes, fitted ${bytes(fitted)} bytes with ${fitted.quality!.length} participants`);
  expect(bytes(large)).toBeGreaterThan(BODY_LIMIT_BYTES);
  expect(bytes(fitted)).toBeLessThan(BODY_LIMIT_BYTES);
  expect(Value.Check(Heartbeat, fitted)).toBe(true);
  expect(fitted.quality!.every((q) => q.tracks === undefined)).toBe(true);
  expect(fitted.quality!.length).toBeGreaterThan(0);
  // The node's own figures always go.
  expect(fitted).toMatchObject({ load: large.load, media: large.media, reconnecting: large.reconnecting });

  // Tracks alone tip it over: every participant kept, the first ones with their tracks.
  const medium = heartbeat(60);
  const fittedMedium = fitHeartbeat(medium);
  const withTracks = fittedMedium.quality!.filter((q) => q.tracks).length;
  console.log(`heartbeat of 60 participants: ${bytes(medium)} bytes, fitted ${bytes(fittedMedium)} bytes, tracks kept for ${withTracks}`);
  expect(bytes(medium)).toBeGreaterThan(48 * 1024);
  expect(bytes(fittedMedium)).toBeLessThanOrEqual(48 * 1024);
  expect(fittedMedium.quality).toHaveLength(60);
  expect(withTracks).toBeGreaterThan(0);
  expect(fittedMedium.quality!.slice(0, withTracks).every((q) => q.tracks?.length === TRACKS_PER_PARTICIPANT)).toBe(true);
  expect(fittedMedium.quality!.slice(withTracks).some((q) => q.tracks)).toBe(false);
});

it('with many peer nodes, every link keeps its loss and jitter and the heartbeat still fits: the link figures grow with the nodes, not the rooms', () => {
  const PEERS = 150;
  const peers = Array.from({ length: PEERS }, (_, i) => `region-${i % 20}-node-${i}`);
  const many: Heartbeat = {
    ...heartbeat(2_000),
    // Each peer probed and linked (all rooms towards it summed in one entry), every figure at its longest.
    peerRtt: Object.fromEntries(peers.map((p) => [p, { rttMs: 123.456789, medianMs: 120.5, jitterMs: 3.25, loss: 0.01, samples: 20 }])),
    media: { inBps: 1e9, outBps: 1e9, links: peers.map((p, i) => ({ peerNodeId: p, peerRegion: `region-${i % 20}`, rooms: 10_000, inBps: 123_456_789, outBps: 123_456_789, loss: 0.1234, jitterMs: 1234.5 })) },
  };
  const fitted = fitHeartbeat(many);
  const linksBytes = Buffer.byteLength(JSON.stringify(many.media!.links));
  console.log(`heartbeat with ${PEERS} peer nodes: links ${linksBytes} bytes (${Math.round(linksBytes / PEERS)} per peer), fitted ${bytes(fitted)} bytes with ${fitted.quality?.length ?? 0} participants`);
  expect(Value.Check(Heartbeat, fitted)).toBe(true);
  expect(bytes(fitted)).toBeLessThanOrEqual(48 * 1024);
  expect(fitted.media).toEqual(many.media);
  expect(fitted.media!.links.every((l) => l.loss === 0.1234 && l.jitterMs === 1234.5)).toBe(true);
});
