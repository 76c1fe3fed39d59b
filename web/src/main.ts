import { h } from './dom.ts';
import { graphPanel } from './panels/graph.ts';
import { mediaPanel } from './panels/media.ts';
import { matrixPanel } from './panels/matrix.ts';
import { alertsPanel, scalingPanel } from './panels/ops.ts';
import { rebalancingPanel } from './panels/rebalancing.ts';
import { HISTORY, regionsPanel } from './panels/regions.ts';
import { roomsPanel } from './panels/rooms.ts';
import { openStream, type StreamStatus } from './sse.ts';
import { forgetToken, initialToken, promptToken } from './token.ts';
import { type DashboardSnapshot, regionProbeRtt } from './types.ts';

/**
 * The dashboard: one live snapshot a second from GET /events, rendered into fixed panels. Public
 * data (regions, RTT matrix) for everyone; rooms, alerts and scaling with the admin token.
 */
const state = {
  snapshot: null as DashboardSnapshot | null,
  /** Router→region probe RTT per region, one sample per snapshot (client-side only). */
  history: new Map<string, number[]>(),
  selectedRoom: null as string | null,
  token: initialToken(),
  status: { kind: 'connecting' } as StreamStatus,
  notice: null as string | null,
};

const slot = () => h('div', { class: 'slot' });
const panel = (title: string, id: string, body: HTMLElement, extra = '') => h('section', { class: `panel ${extra}`, id }, h('h2', null, title), body);
const ui = {
  status: h('span', { class: 'pill', 'data-status': 'connecting' }),
  scope: h('span', { class: 'pill' }),
  updated: h('span', { class: 'muted small' }),
  auth: h('span'),
  notice: h('div', { class: 'notice', hidden: true }),
  regions: slot(),
  graph: slot(),
  matrix: slot(),
  rooms: slot(),
  media: slot(),
  alerts: slot(),
  scaling: slot(),
  rebalancing: slot(),
};

document.querySelector('#app')!.replaceChildren(
  h(
    'header',
    { class: 'top' },
    h('h1', null, 'geo-sfu', h('span', { class: 'muted' }, ' dashboard')),
    h('div', { class: 'top-right' }, ui.status, ui.scope, ui.updated, ui.auth),
  ),
  ui.notice,
  h('main', null,
    panel('Regions', 'regions-panel', ui.regions, 'wide'),
    panel('Cascade map', 'graph-panel', ui.graph, 'map-panel'),
    panel('Inter-region RTT', 'matrix-panel', ui.matrix),
    panel('Rooms', 'rooms-panel', ui.rooms, 'wide'),
    panel('Media per participant and track', 'media-panel', ui.media, 'wide'),
    panel('Quality alerts', 'alerts-panel', ui.alerts),
    panel('Scaling', 'scaling-panel', ui.scaling),
    panel('Rebalancing', 'rebalancing-panel', ui.rebalancing),
  ),
);

let stop: (() => void) | null = null;
function connect(): void {
  stop?.();
  stop = openStream({
    url: '/events',
    token: state.token,
    onStatus: (status) => {
      state.status = status;
      if (status.kind === 'unauthorized') {
        forgetToken();
        state.token = null;
        state.notice = 'The admin token was refused: showing public data only.';
        connect();
      }
      renderChrome();
    },
    onMessage: (message) => {
      if (message.event !== 'snapshot') return;
      const snapshot = JSON.parse(message.data) as DashboardSnapshot;
      state.snapshot = snapshot;
      for (const region of snapshot.regions.regions) {
        const rtt = regionProbeRtt(region);
        if (rtt === null) continue;
        const samples = state.history.get(region.id) ?? [];
        samples.push(rtt);
        if (samples.length > HISTORY) samples.shift();
        state.history.set(region.id, samples);
      }
      render();
    },
  });
}

function signIn(): void {
  const token = promptToken();
  if (!token) return;
  state.token = token;
  state.notice = null;
  connect();
  renderChrome();
}

function signOut(): void {
  forgetToken();
  state.token = null;
  state.selectedRoom = null;
  connect();
  renderChrome();
}

function renderChrome(): void {
  const { status } = state;
  ui.status.dataset.status = status.kind;
  ui.status.className = `pill ${status.kind === 'live' ? 'ok' : status.kind === 'connecting' ? '' : 'warn'}`;
  ui.status.textContent = status.kind === 'live' ? '● live' : status.kind === 'connecting' ? 'connecting…' : status.kind === 'retrying' ? `reconnecting (${status.reason})` : 'token refused';
  const scope = state.snapshot?.scope ?? (state.token ? 'admin' : 'public');
  ui.scope.textContent = scope === 'admin' ? 'admin view' : 'public view';
  ui.scope.dataset.scope = scope;
  ui.auth.replaceChildren(
    state.token ? h('button', { type: 'button', onclick: signOut }, 'Sign out') : h('button', { type: 'button', onclick: signIn, title: 'or open /#token=<GEO_SFU_ADMIN_TOKEN>' }, 'Admin sign-in'),
  );
  ui.notice.hidden = state.notice === null;
  ui.notice.textContent = state.notice ?? '';
}

function adminOnly(what: string): HTMLElement {
  return h('p', { class: 'empty muted', 'data-admin-only': '' }, `${what} need the admin token: open `, h('code', null, '/#token=…'), ' or use Admin sign-in.');
}

function render(): void {
  const snapshot = state.snapshot;
  if (!snapshot) return;
  const now = Date.parse(snapshot.at);
  ui.updated.textContent = `updated ${new Date(snapshot.at).toLocaleTimeString()}`;
  const rooms = snapshot.rooms;
  if (rooms && state.selectedRoom && !rooms.some((r) => r.roomId === state.selectedRoom)) state.selectedRoom = null;
  const selected = rooms?.find((r) => r.roomId === state.selectedRoom) ?? null;
  const nodeMedia = snapshot.media ? new Map(snapshot.media.nodes.map((n) => [n.nodeId, n])) : null;
  ui.regions.replaceChildren(regionsPanel(snapshot.regions.regions, state.history, nodeMedia));
  ui.graph.replaceChildren(graphPanel(snapshot, selected));
  ui.matrix.replaceChildren(matrixPanel(snapshot.regions));
  ui.rooms.replaceChildren(
    rooms
      ? roomsPanel(rooms, snapshot.roomsTotal ?? rooms.length, snapshot.roomsEmpty ?? 0, state.selectedRoom, (roomId) => {
          state.selectedRoom = state.selectedRoom === roomId ? null : roomId;
          render();
        })
      : adminOnly('Rooms'),
  );
  ui.media.replaceChildren(rooms ? mediaPanel(rooms, selected) : adminOnly('Media figures'));
  ui.alerts.replaceChildren(snapshot.alerts ? alertsPanel(snapshot.alerts, now) : adminOnly('Alerts'));
  ui.scaling.replaceChildren(snapshot.scaling ? scalingPanel(snapshot.scaling, now) : adminOnly('Scaling decisions'));
  ui.rebalancing.replaceChildren(snapshot.rebalancing ? rebalancingPanel(snapshot.rebalancing) : adminOnly('Rebalancing decisions'));
  renderChrome();
}

renderChrome();
connect();
