import { describe, expect, it } from 'vitest';
import { renderRoom } from '../../cli/commands/rooms.ts';
import { roomNodeSet } from '../../router/operations/room-nodes.ts';
import type { NodeSnapshot } from '../../router/registry/node-registry.ts';
import { roomView } from '../../router/room-view.ts';
import type { RoomState } from '../../router/state/types.ts';

/** The room's region policy where operators look (GET /rooms/:id's view, the CLI's room view) and in the node set pushed to the cascade. */
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

describe('the room node set pushed to the agents', () => {
  it('never names a node outside the policy, even one a participant record points at', () => {
    const snapshot = (nodeId: string, region: string) => ({ nodeId, region, state: 'alive', record: { registration: { controlUrl: `http://${nodeId}` } } }) as unknown as NodeSnapshot;
    const nodes = new Map(['eu-west-1', 'us-east-1', 'apac-1'].map((id) => [id, snapshot(id, id.replace(/-\d+$/, ''))]));
    const room = state({ allowedRegions: ['us-east', 'eu-west'], preferredRegions: [], allowP2p: false });
    const at = (nodeId: string, participantId: string) => ({ ...room.participants[0]!, participantId, nodeId, region: nodeId.replace(/-\d+$/, '') });
    room.participants = [at('eu-west-1', 'a'), at('us-east-1', 'b'), at('apac-1', 'c')];
    expect(roomNodeSet(room, nodes).nodes.map((n) => n.nodeId)).toEqual(['eu-west-1', 'us-east-1']);
    expect(roomNodeSet({ ...room, room: { ...room.room, policy: null } }, nodes).nodes.map((n) => n.nodeId)).toEqual(['eu-west-1', 'us-east-1', 'apac-1']);
  });
});
