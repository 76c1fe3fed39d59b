import { expect, it } from 'vitest';
import { renderAlerts } from '../../cli/commands/monitoring.ts';

it('geo-sfu alerts lists a cascade link by its sending node and region in place of a room and participant', () => {
  const since = '2026-12-06T12:00:00.000Z';
  const out = renderAlerts([
    { scope: 'participant', roomId: 'room-1', participantId: 'alice', region: 'eu-west', nodeId: 'eu-west-1', kind: 'rtt', value: 250, threshold: 200, since },
    { scope: 'cascade_link', peerNodeId: 'apac-1', peerRegion: 'apac', region: 'eu-west', nodeId: 'eu-west-1', kind: 'jitter', value: 41.5, threshold: 30, since, loss: 0.01, jitterMs: 41.5, rttMs: 180 },
  ]);
  const lines = out.split('\n');
  expect(lines[0]).toBe('Active quality alerts (2)');
  expect(lines.find((l) => l.includes('alice'))).toMatch(/room-1\s+│ alice\s+│ eu-west\s+│ eu-west-1 │ rtt\s+│\s+250(\.0)? ms │\s+200(\.0)? ms/);
  expect(lines.find((l) => l.includes('apac-1'))).toMatch(/link from apac-1 │ apac\s+│ eu-west\s+│ eu-west-1 │ jitter │\s+41\.5 ms │\s+30\.0 ms/);
});
