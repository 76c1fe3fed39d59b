import { bitrate, h, ms, pct } from '../dom.ts';
import type { DashboardParticipant, DashboardRoom } from '../types.ts';

type Track = NonNullable<DashboardParticipant['media']>['tracks'][number];

/** Rows shown when no room is selected (the selected room shows all its listed participants). */
const ROWS = 40;

/**
 * Per participant and track, what its SFU measures (the figures operators know from LiveKit's and
 * Jitsi's dashboards): the selected room's participants, or every listed room's. Resolution and
 * frame rate are derived, marked "≈", and the key says how.
 */
export function mediaPanel(rooms: DashboardRoom[], selected: DashboardRoom | null): HTMLElement {
  const people = (selected ? [selected] : rooms).flatMap((room) => room.people.map((p) => ({ room: room.roomId, p })));
  if (people.length === 0) return h('p', { class: 'empty muted', 'data-media': 0 }, 'No participants yet.');
  const shown = selected ? people : people.slice(0, ROWS);
  return h(
    'div',
    null,
    h(
      'table',
      { class: 'media', 'data-media': shown.length },
      h(
        'thead',
        null,
        h('tr', null, ['participant', 'status', 'track', 'bitrate', 'loss', 'RTT', 'jitter', 'score', 'layer', '≈ resolution · frame rate'].map((c) => h('th', null, c))),
      ),
      h('tbody', null, shown.map(({ room, p }) => [participantRow(room, p), ...(p.media?.tracks ?? []).map((t) => trackRow(p, t))])),
    ),
    shown.length < people.length && h('p', { class: 'muted small' }, `showing the first ${shown.length} of ${people.length} participants: select a room to see its own`),
    h(
      'p',
      { class: 'muted small media-key' },
      'Measured by the SFU (mediasoup stats, each node every heartbeat): bitrates, loss, RTT (RTCP reports), jitter, score (0–10) and the simulcast/SVC layer in use (spatial S, temporal T, of how many). ',
      'Derived (≈): resolution and frame rate — the SFU does not decode video, so they come from the capture size and rate the client declared when it published, scaled for the layer in use. ',
      '▲ published: the SFU receives it from this participant; ▼ received: the SFU sends it to this participant.',
    ),
  );
}

function participantRow(room: string, p: DashboardParticipant): HTMLElement {
  const m = p.media;
  return h(
    'tr',
    { class: 'participant-row', 'data-participant': p.participantId, 'data-room-of': room, 'data-status': p.status, 'data-in-bps': m?.inBps ?? '', 'data-out-bps': m?.outBps ?? '' },
    h('td', null, h('span', { class: 'mono' }, p.participantId), h('div', { class: 'muted small' }, `${room} · ${p.region} · ${p.nodeId}`)),
    h('td', null, statusPill(p)),
    h('td', { class: 'small' }, m ? `${m.tracks.filter((t) => t.direction === 'in').length} published · ${m.tracks.filter((t) => t.direction === 'out').length} received` : h('span', { class: 'muted' }, p.status === 'allocated' ? 'not joined yet' : 'no report yet')),
    h('td', { class: 'num' }, m ? `▲ ${bitrate(m.inBps)} ▼ ${bitrate(m.outBps)}` : '—'),
    h('td', { class: 'num' }, m ? pct(m.packetLoss, 1) : '—'),
    h('td', { class: 'num' }, m ? ms(m.rttMs) : '—'),
    h('td', { class: 'num' }, m ? ms(m.jitterMs, 1) : '—'),
    h('td', { colspan: 3 }),
  );
}

function statusPill(p: DashboardParticipant): HTMLElement {
  if (p.status === 'reconnecting') {
    return h('span', { class: 'pill warn', title: 'its connection dropped; its session waits for a resume, then it leaves' }, `reconnecting ${Math.round((p.reconnectingForMs ?? 0) / 1000)} s`);
  }
  return h('span', { class: `pill ${p.status === 'joined' ? 'ok' : ''}` }, p.status === 'joined' ? 'joined' : 'allocated');
}

function trackRow(p: DashboardParticipant, t: Track): HTMLElement {
  const layer = t.spatialLayers > 1 || t.temporalLayers > 1 ? `S${t.spatialLayer ?? '–'}/${t.spatialLayers} T${t.temporalLayer ?? '–'}/${t.temporalLayers}` : 'single';
  const size = t.width !== undefined && t.height !== undefined ? `≈ ${t.width}×${t.height}${t.frameRate !== undefined ? ` · ${t.frameRate} fps` : ''}` : t.kind === 'video' ? '—' : '';
  return h(
    'tr',
    {
      class: 'track-row',
      'data-track-of': p.participantId,
      'data-direction': t.direction,
      'data-kind': t.kind,
      'data-bps': t.bitrateBps,
      'data-width': t.width ?? '',
      'data-height': t.height ?? '',
      'data-fps': t.frameRate ?? '',
      'data-score': t.score ?? '',
    },
    h('td'),
    h('td'),
    h('td', { class: 'small' }, `${t.direction === 'in' ? '▲ published' : '▼ received'} ${t.kind}`, t.paused ? h('span', { class: 'muted' }, ' (paused)') : null),
    h('td', { class: 'num' }, bitrate(t.bitrateBps)),
    h('td', { class: 'num' }, t.loss === undefined ? '—' : pct(t.loss, 1)),
    h('td', { class: 'num' }, ms(t.rttMs)),
    h('td', { class: 'num' }, ms(t.jitterMs, 1)),
    h('td', { class: 'num' }, t.score ?? '—'),
    h('td', { class: 'small' }, layer),
    h('td', { class: 'small derived' }, size),
  );
}
