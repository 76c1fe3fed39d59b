import { h } from '../dom.ts';
import type { DashboardRoom } from '../types.ts';

/** Rooms with their participants grouped by edge region (home first) and their cascade links. */
export function roomsPanel(rooms: DashboardRoom[], total: number, empty: number, selected: string | null, select: (roomId: string) => void): HTMLElement {
  if (rooms.length === 0) {
    return h('p', { class: 'empty muted', 'data-rooms-note': '' }, total === 0 ? 'No rooms yet. POST /allocate creates one.' : `No room has participants now; ${hiddenNote(total, empty)}.`);
  }
  return h(
    'div',
    null,
    h(
      'table',
      { class: 'rooms' },
      h('thead', null, h('tr', null, h('th', null, 'room'), h('th', null, 'home'), h('th', { class: 'num' }, 'people'), h('th', null, 'participants by edge region'), h('th', null, 'cascade'), h('th', null, 'region policy'))),
      h(
        'tbody',
        null,
        rooms.map((room) =>
          h(
            'tr',
            { class: room.roomId === selected ? 'selected' : '', 'data-room': room.roomId, tabindex: 0, onclick: () => select(room.roomId), onkeydown: (e: Event) => (e as KeyboardEvent).key === 'Enter' && select(room.roomId) },
            h('td', { class: 'mono' }, room.roomId),
            h('td', null, h('span', { class: 'region-tag home' }, room.homeRegion)),
            h('td', { class: 'num' }, room.participants),
            h(
              'td',
              null,
              room.edges.map((e) =>
                h(
                  'div',
                  { class: 'edge', 'data-edge': e.region },
                  h('span', { class: `region-tag${e.region === room.homeRegion ? ' home' : ''}` }, `${e.region} · ${e.count}`),
                  ' ',
                  h('span', { class: 'ids' }, e.participantIds.join(', ') + (e.count > e.participantIds.length ? ` +${e.count - e.participantIds.length}` : '')),
                  e.reconnecting > 0 &&
                    h(
                      'span',
                      { class: 'pill warn', 'data-reconnecting': e.reconnecting, title: 'their connection dropped; each leaves unless it resumes within the grace period' },
                      `${e.reconnecting} reconnecting: ${room.people.filter((p) => p.region === e.region && p.status === 'reconnecting').map((p) => p.participantId).join(', ')}`,
                    ),
                ),
              ),
            ),
            h('td', { class: 'links' }, room.links.length === 0 ? h('span', { class: 'muted' }, 'single region') : room.links.map((l) => h('div', { 'data-room-link': `${l.from}~${l.to}` }, `${l.from} ↔ ${l.to}`))),
            h('td', { class: 'policy', 'data-policy': room.policy ? room.policy.allowedRegions.join(' ') : '' }, policyText(room.policy)),
          ),
        ),
      ),
    ),
    total > rooms.length && h('p', { class: 'muted small', 'data-rooms-note': '' }, `showing ${rooms.length} of ${total} rooms: ${hiddenNote(total - rooms.length, empty)}`),
  );
}

/** Why rooms are not listed: empty ones (kept until they expire), and past the first ones read. */
function hiddenNote(hidden: number, empty: number): string {
  const parts = [];
  if (empty > 0) parts.push(`${empty} empty room${empty === 1 ? '' : 's'} hidden (no participant; a room is kept until it expires)`);
  if (hidden > empty) parts.push(`${hidden - empty} more not read (only the first rooms by id are)`);
  return parts.join('; ');
}

/** A room's region policy in a line: where its media may go, what it prefers, whether P2P may carry it. */
function policyText(policy: DashboardRoom['policy']): HTMLElement {
  if (!policy) return h('span', { class: 'muted' }, 'none');
  const preferred = policy.preferredRegions?.length ? `; prefers ${policy.preferredRegions.join(', ')}` : '';
  return h('span', null, `only ${policy.allowedRegions.join(', ')}${preferred}${policy.allowP2p ? '; P2P allowed' : ''}`);
}
