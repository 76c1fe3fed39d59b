import { describe, expect, it } from 'vitest';
import { renderRoom } from '../../cli/commands/rooms.ts';
import { roomView } from '../../router/room-view.ts';
import type { RoomState } from '../../router/state/types.ts';

/** The room's region policy where operators look: GET /rooms/:id's view and the CLI's room view. */
const state = (policy: RoomState['room']['policy']): RoomState => ({
  room: { roomId: 'r', homeRegion: 'eu-west', homeNodeId: 'eu-west-1', epoch: 0, createdAtMs: 0, policy },
  participants: [{ participantId: 'a', allocationId: 'x', region: 'eu-west', nodeId: 'eu-west-1', status: 'joined', rttMs: {}, allocatedAtMs: 0, expiresAtMs: 0 }],
  plans: [],
  version: 1,
});

describe('region policy in the room views', () => {
  it('GET /rooms/:id shows the policy (absent without one); the CLI prints it in a line', () => {
    const policy = { allowedRegions: ['us-east', 'eu-west'], preferredRegions: ['eu-west'], allowP2p: true };
    const view = roomView(state(policy), ['us-west', 'us-east', 'eu-west', 'apac']);
    expect(view.policy).toEqual(policy);
    expect(renderRoom(view)).toContain('Region policy: media only in us-east, eu-west; preferred eu-west; P2P fallback allowed');
    const none = roomView(state(null), ['us-west', 'us-east', 'eu-west', 'apac']);
    expect('policy' in none).toBe(false);
    expect(renderRoom(none)).toContain('Region policy: none');
  });
});
