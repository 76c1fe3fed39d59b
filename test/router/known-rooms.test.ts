import { describe, expect, it } from 'vitest';
import { KnownRooms, NO_ROOM, type KnownRoom } from '../../router/allocation/known-rooms.ts';

function room(version: number, participants: number): KnownRoom {
  return {
    version,
    home: { region: 'us-east', nodeId: 'us-east-1' },
    epoch: 0,
    policy: null,
    participants: Array.from({ length: participants }, (_, i) => ({ participantId: `p${i}`, region: 'us-east', nodeId: 'us-east-1', edgeRttMs: 10 })),
    plans: new Map(),
  };
}

describe('KnownRooms', () => {
  it('answers NO_ROOM for a room never seen or forgotten', () => {
    const rooms = new KnownRooms(100);
    expect(rooms.get('r1')).toBe(NO_ROOM);
    rooms.set('r1', room(3, 2));
    expect(rooms.get('r1').version).toBe(3);
    rooms.delete('r1');
    expect(rooms.get('r1')).toBe(NO_ROOM);
  });

  it('keeps at most its budget of participants (a room counts one more), dropping the least recently used', () => {
    const rooms = new KnownRooms(12);
    rooms.set('a', room(1, 3));
    rooms.set('b', room(2, 3));
    rooms.set('c', room(3, 3));
    rooms.get('a');
    // 16 > 12: b is the least recently used.
    rooms.set('d', room(4, 3));
    expect(['a', 'b', 'c', 'd'].map((id) => rooms.get(id).version)).toEqual([1, 0, 3, 4]);
    // Replacing a room counts its new size only.
    rooms.set('d', room(5, 0));
    rooms.set('e', room(6, 2));
    expect(['a', 'c', 'd', 'e'].map((id) => rooms.get(id).version)).toEqual([1, 3, 5, 6]);
    // A room larger than the whole budget is not kept.
    rooms.set('huge', room(7, 20));
    expect(rooms.get('huge')).toBe(NO_ROOM);
  });
});
