import { GeoSfuClient, type GeoSfuRoom, type ProbeResult, type RegionsResponse, type RemoteTrack } from '../../../sdk/index.ts';
import { h, ms, pct } from '../dom.ts';
import { EMULATED_FAR_MS, EMULATED_NEAR_MS, emulatedLatencies, readParams, resolveRegion } from './emulation.ts';

/**
 * The demo: join a room with camera and microphone through the SDK, see who is on which region's
 * edge, this browser's measured RTT to every region, and (to see the cascade on one machine)
 * emulate being near a chosen region. Grants come from the router's development-only
 * POST /demo/grant, standing in for an application backend that would call createGrant().
 */

/** Small capture: one machine runs several participants (and the browser tests run three). */
const VIDEO = { width: 320, height: 240, frameRate: 15 };

type Status = 'idle' | 'joining' | 'joined' | 'reconnecting' | 'left' | 'failed';

const params = readParams(location.search, () => Math.random().toString(36).slice(2, 7));
const client = new GeoSfuClient({ routerUrl: location.origin });
const state = {
  regions: null as RegionsResponse | null,
  probe: null as ProbeResult | null,
  probing: false,
  room: null as GeoSfuRoom | null,
  local: null as MediaStream | null,
  /** What the last /allocate was given. */
  sentLatencies: null as Record<string, number> | null,
};

const ui = {
  status: h('span', { class: 'pill', id: 'status', 'data-state': 'idle' }, 'idle'),
  room: h('input', { id: 'room', value: params.room, maxlength: 128, spellcheck: false }),
  name: h('input', { id: 'name', value: params.name, maxlength: 128, spellcheck: false }),
  region: h('select', { id: 'region' }),
  join: h('button', { id: 'join', class: 'primary' }, 'Join'),
  leave: h('button', { id: 'leave', disabled: true }, 'Leave'),
  reprobe: h('button', { id: 'reprobe' }, 'Measure again'),
  rtt: h('div', { id: 'rtt' }),
  edge: h('div', { id: 'edge', class: 'muted' }, 'Not in a room.'),
  groups: h('div', { id: 'groups' }),
  videos: h('div', { id: 'videos', class: 'videos' }),
  log: h('ol', { id: 'log', class: 'log' }),
  /** What the link asked for that the page changed (a room id normalised, an unknown region). */
  notices: h('ul', { id: 'notices', class: 'notices' }),
};

const panel = (title: string, id: string, ...body: HTMLElement[]) => h('section', { class: 'panel', id }, h('h2', null, title), ...body);
document.querySelector('#app')!.replaceChildren(
  h('header', { class: 'top' }, h('h1', null, 'geo-sfu', h('span', { class: 'muted' }, ' demo')), h('div', { class: 'top-right' }, ui.status, h('a', { href: '/', class: 'small' }, 'dashboard'))),
  h('main', { class: 'demo' },
    panel('Join', 'join-panel',
      h('div', { class: 'form' },
        h('label', null, 'Room', ui.room),
        h('label', null, 'Your name', ui.name),
        h('label', null, 'Emulate region', ui.region),
        h('div', { class: 'buttons' }, ui.join, ui.leave),
      ),
      ui.notices,
      h('p', { class: 'muted small' },
        `Emulating a region sends /allocate ${EMULATED_NEAR_MS} ms to it and ${EMULATED_FAR_MS} ms to every other region, so this tab lands on that region's edge; open a second tab with another region to see the cascade between the two edges.`),
    ),
    panel('Your RTT to each region', 'rtt-panel', ui.rtt, h('div', { class: 'buttons' }, ui.reprobe)),
    panel('Room', 'room-panel', ui.edge, ui.groups),
    panel('Video', 'video-panel', ui.videos),
    panel('Events', 'log-panel', ui.log),
  ),
);

function setStatus(status: Status, text: string = status): void {
  ui.status.dataset.state = status;
  ui.status.textContent = text;
  ui.status.className = `pill ${status === 'joined' ? 'ok' : status === 'failed' ? 'bad' : status === 'reconnecting' || status === 'joining' ? 'warn' : ''}`;
  ui.join.disabled = status === 'joining' || status === 'joined' || status === 'reconnecting';
  ui.leave.disabled = !(status === 'joined' || status === 'reconnecting');
  for (const input of [ui.room, ui.name, ui.region]) input.disabled = ui.join.disabled;
}

function log(text: string): void {
  ui.log.prepend(h('li', null, h('span', { class: 'muted' }, new Date().toLocaleTimeString(), ' '), text));
  while (ui.log.children.length > 30) ui.log.lastElementChild!.remove();
}

const regionIds = () => state.regions?.regions.map((r) => r.id) ?? [];
const regionName = (id: string) => state.regions?.regions.find((r) => r.id === id)?.displayName ?? id;

/** Shows what the link asked for that the page changed, and puts the link as used in the address bar (to share). */
function notice(text: string): void {
  ui.notices.append(h('li', null, text));
  const q = new URLSearchParams(location.search);
  q.set('room', ui.room.value);
  if (q.has('name')) q.set('name', ui.name.value);
  if (q.has('region')) {
    if (params.region === null) q.delete('region');
    else q.set('region', params.region);
  }
  history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
}

let regionResolved = false;

function renderRegionChoice(): void {
  if (!regionResolved && state.regions) {
    regionResolved = true;
    const resolved = resolveRegion(params.region, regionIds());
    params.region = resolved.region;
    if (resolved.notice) notice(resolved.notice);
  }
  const chosen = ui.region.value || params.region || '';
  ui.region.replaceChildren(
    h('option', { value: '' }, 'none: use my measured RTTs'),
    ...regionIds().map((id) => h('option', { value: id }, `${id} (${regionName(id)})`)),
  );
  ui.region.value = regionIds().includes(chosen) ? chosen : '';
}

function renderRtt(): void {
  const probe = state.probe;
  if (!state.regions) {
    ui.rtt.replaceChildren(h('p', { class: 'muted' }, 'Loading regions…'));
    return;
  }
  const emulated = ui.region.value ? emulatedLatencies(regionIds(), ui.region.value) : null;
  const rows = state.regions.regions.map((r) => {
    const p = probe?.regions.find((x) => x.region === r.id);
    const sent = state.sentLatencies?.[r.id] ?? emulated?.[r.id] ?? probe?.latencies[r.id];
    return h('tr', { 'data-region': r.id, class: probe?.recommended === r.id ? 'best' : '' },
      h('td', null, r.id, ' ', h('span', { class: 'muted small' }, r.displayName)),
      h('td', { class: 'num', 'data-rtt': p?.medianMs ?? '' }, p ? ms(p.medianMs, 1) : state.probing ? '…' : '—'),
      h('td', { class: 'num' }, p ? ms(p.jitterMs, 1) : ''),
      h('td', { class: 'num' }, p ? pct(p.loss) : ''),
      h('td', { class: 'num' }, sent === undefined ? '—' : ms(sent)),
    );
  });
  ui.rtt.replaceChildren(
    h('table', { class: 'grid' },
      h('thead', null, h('tr', null, h('th', null, 'Region'), h('th', null, 'Median'), h('th', null, 'Jitter'), h('th', null, 'Loss'), h('th', null, 'To /allocate'))),
      h('tbody', null, rows),
    ),
    h('p', { class: 'muted small' }, probe ? `Measured from this browser (SDK probeRegions, ${probe.regions[0]?.sent ?? 0} samples per node after a warm-up).${probe.recommended ? ` Nearest: ${probe.recommended}.` : ''}` : state.probing ? 'Measuring…' : ''),
  );
}

function renderRoom(): void {
  const room = state.room;
  if (!room || room.closed) {
    ui.edge.replaceChildren('Not in a room.');
    ui.edge.removeAttribute('data-region');
    ui.groups.replaceChildren();
    return;
  }
  const edge = room.edge;
  const direct = edge.mode === 'p2p';
  ui.edge.dataset.mode = edge.mode;
  ui.edge.dataset.region = edge.region;
  ui.edge.dataset.node = edge.nodeId;
  ui.edge.replaceChildren(
    ...(direct
      ? ['Room ', h('b', null, room.roomId), ' · ', h('span', { class: 'badge warn' }, 'direct (P2P)'), ' no region can take the room now: this browser is linked directly to each of the others (no SFU); it moves onto an SFU as soon as a region can take the room']
      : ['Room ', h('b', null, room.roomId), ' · your edge ', h('b', null, edge.region), ` (${edge.nodeId}) · home region `, h('b', null, edge.homeRegion)]),
  );
  const byRegion = new Map<string, Array<{ id: string; self: boolean }>>();
  const add = (region: string, id: string, self: boolean) => {
    if (!byRegion.has(region)) byRegion.set(region, []);
    byRegion.get(region)!.push({ id, self });
  };
  add(edge.region, room.participantId, true);
  for (const p of room.participants) add(p.region, p.displayName ?? p.peerId, false);
  // Home first, then the catalog's order. P2P: one group (region "p2p"), no edge and no home.
  const order = [edge.homeRegion, ...regionIds().filter((id) => id !== edge.homeRegion)];
  const title = (region: string) =>
    region === 'p2p'
      ? h('h3', null, 'direct (P2P) ', h('span', { class: 'muted small' }, 'linked browser to browser'))
      : h('h3', null, region, ' ', h('span', { class: 'muted small' }, regionName(region)), region === edge.homeRegion && !direct ? h('span', { class: 'badge ok' }, 'home') : null);
  ui.groups.replaceChildren(
    ...[...byRegion.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b)).map((region) =>
      h('div', { class: 'group', 'data-region': region },
        title(region),
        h('ul', null, byRegion.get(region)!.map((p) => h('li', { 'data-participant': p.id }, p.id, p.self ? h('span', { class: 'muted' }, ' (you)') : null))),
      ),
    ),
  );
}

/**
 * One tile per remote participant: its video, and its audio in a hidden element, each with the
 * producer id it shows (a track replaced by another, e.g. direct → SFU, must not be cleared when
 * the old one is removed).
 */
const tiles = new Map<string, { el: HTMLElement; video: HTMLVideoElement; audio: HTMLAudioElement; label: HTMLElement; showing: Record<'audio' | 'video', string | null> }>();

function tileOf(peerId: string, region: string) {
  let tile = tiles.get(peerId);
  if (!tile) {
    const video = h('video', { autoplay: true, playsinline: true, muted: true });
    const audio = h('audio', { autoplay: true });
    const label = h('div', { class: 'label' });
    tile = { el: h('figure', { class: 'tile', 'data-peer': peerId }, video, audio, label), video, audio, label, showing: { audio: null, video: null } };
    tiles.set(peerId, tile);
    ui.videos.append(tile.el);
  }
  tile.el.dataset.region = region;
  tile.label.textContent = `${peerId} · ${region === 'p2p' ? 'direct (P2P)' : region}`;
  return tile;
}

function onTrack(t: RemoteTrack): void {
  const tile = tileOf(t.peerId, t.region);
  const media = t.kind === 'video' ? tile.video : tile.audio;
  tile.showing[t.kind] = t.producerId;
  media.srcObject = new MediaStream([t.track]);
  void media.play().catch(() => undefined);
  // A participant's region changes without an event of its own when the room moves (direct → SFU).
  renderRoom();
}

function dropTile(peerId: string): void {
  tiles.get(peerId)?.el.remove();
  tiles.delete(peerId);
}

function localTile(stream: MediaStream): void {
  const video = h('video', { autoplay: true, playsinline: true, muted: true });
  video.srcObject = stream;
  ui.videos.prepend(h('figure', { class: 'tile self', 'data-self': 'true' }, video, h('div', { class: 'label' }, `${ui.name.value} (you)`)));
}

async function demoGrant(roomId: string, participantId: string): Promise<string> {
  const res = await fetch('/demo/grant', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ roomId, participantId }) });
  const body = (await res.json().catch(() => null)) as { grant?: string; error?: { message?: string } } | null;
  if (res.status === 404) throw new Error('this router hands out no demo grants (GEO_SFU_DEMO_GRANTS is off; the embedded default turns it on)');
  if (!res.ok || typeof body?.grant !== 'string') throw new Error(`demo grant refused: ${body?.error?.message ?? `HTTP ${res.status}`}`);
  return body.grant;
}

async function probe(): Promise<void> {
  state.probing = true;
  renderRtt();
  try {
    state.probe = await client.probeRegions({ samples: 5 });
    state.regions = await client.regions();
  } catch (err) {
    log(`RTT measurement failed: ${(err as Error).message}`);
  } finally {
    state.probing = false;
    renderRegionChoice();
    renderRtt();
  }
}

async function join(): Promise<void> {
  const roomId = ui.room.value.trim();
  const participantId = ui.name.value.trim();
  setStatus('joining');
  try {
    state.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: VIDEO });
    if (!state.probe) await probe();
    const emulate = ui.region.value;
    const latencies = emulate ? emulatedLatencies(regionIds(), emulate) : (state.probe?.latencies ?? {});
    state.sentLatencies = latencies;
    renderRtt();
    // A function: the SDK asks again before every /allocate, also its own after a failure.
    const allocation = await client.allocate(roomId, participantId, { grant: () => demoGrant(roomId, participantId), latencies });
    log(
      allocation.mode === 'p2p'
        ? `/allocate: no region can take the room now; direct (P2P) links to the others, up to ${allocation.maxParticipants} participants`
        : `/allocate: edge ${allocation.region} (${allocation.node.id}), home ${allocation.homeRegion}`,
    );
    localTile(state.local);
    const [audio, video] = [state.local.getAudioTracks()[0], state.local.getVideoTracks()[0]];
    state.room = await client.join({
      allocation,
      displayName: participantId,
      // 320×240 in a single encoding: simulcast layers below it would be thumbnails.
      tracks: [...(audio ? [audio] : []), ...(video ? [{ track: video, options: { encodings: null } }] : [])],
      on: {
        participantJoined: (p) => {
          log(`${p.displayName ?? p.peerId} joined ${p.region === 'p2p' ? 'directly (P2P)' : `on ${p.region}`}`);
          renderRoom();
        },
        participantLeft: (p) => {
          log(`${p.peerId} left`);
          dropTile(p.peerId);
          renderRoom();
        },
        trackAdded: onTrack,
        trackRemoved: (t) => {
          const tile = tiles.get(t.peerId);
          if (!tile || tile.showing[t.kind] !== t.producerId) return;
          tile.showing[t.kind] = null;
          (t.kind === 'video' ? tile.video : tile.audio).srcObject = null;
        },
        reconnecting: (e) => {
          setStatus('reconnecting');
          log(`connection to ${e.edge.nodeId} lost (${e.reason}); reconnecting`);
        },
        reconnected: (e) => {
          setStatus('joined');
          log(`${e.resumed ? 'resumed on' : e.previous.mode === 'p2p' && e.edge.mode === 'sfu' ? 'moved onto the SFU on' : 'rejoined on'} ${e.edge.region} (${e.edge.nodeId}) after ${Math.round(e.gapMs)} ms`);
          renderRoom();
        },
        moved: (e) => log(e.from.mode === 'p2p' ? `a region can take the room again: moving from the direct links onto an SFU (${e.reason})` : `moved off ${e.from.nodeId}: ${e.reason}`),
        error: (e) => log(`${e.fatal ? 'fatal: ' : ''}${e.error.message}`),
        closed: (e) => {
          log(`room closed: ${e.reason}`);
          void leave('left');
        },
      },
    });
    setStatus('joined');
    renderRoom();
  } catch (err) {
    log(`join failed: ${(err as Error).message}`);
    await leave('failed');
  }
}

async function leave(status: Status): Promise<void> {
  const room = state.room;
  state.room = null;
  await room?.leave().catch(() => undefined);
  for (const t of state.local?.getTracks() ?? []) t.stop();
  state.local = null;
  state.sentLatencies = null;
  for (const id of [...tiles.keys()]) dropTile(id);
  ui.videos.replaceChildren();
  setStatus(status);
  renderRoom();
  renderRtt();
}

ui.join.addEventListener('click', () => void join());
ui.leave.addEventListener('click', () => {
  log('left the room');
  void leave('left');
});
ui.reprobe.addEventListener('click', () => void probe());
ui.region.addEventListener('change', renderRtt);
window.addEventListener('pagehide', () => void state.room?.leave());

setStatus('idle');
for (const text of params.notices) notice(text);
renderRtt();
void client
  .regions()
  .then((regions) => {
    state.regions = regions;
    renderRegionChoice();
    renderRtt();
    return probe();
  })
  .catch((err: unknown) => log(`GET /regions failed: ${(err as Error).message}`));
