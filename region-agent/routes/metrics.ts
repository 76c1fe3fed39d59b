import v8 from 'node:v8';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsSource } from '../../shared/http.ts';
import { liveHeapGauge } from '../../shared/live-heap.ts';
import type { CascadeLinkStatus } from '../cascade/cascade.ts';
import type { ConditionerStats } from '../cascade/conditioner.ts';
import type { AgentController } from '../controller.ts';
import type { AgentSfu } from '../sfu.ts';

export interface AgentMetricsOptions {
  /** The agent's own registry (its owner adds to it too: geo_sfu_unexpected_errors_total). */
  registry: Registry;
  controller: AgentController;
  /** Worker deaths are counted when the agent runs an SFU. */
  sfu?: AgentSfu;
  /** The cascade's links, read at scrape time (none without a cascade). */
  cascadeLinks?: () => CascadeLinkStatus[];
  /** The pipe conditioner's counters over every link so far (absent without a cascade). */
  pipeConditioner?: () => ConditionerStats;
}

/**
 * What the agent's GET /metrics serves (shared/http.ts serveMetrics): a registry of the agent's own
 * (several agents may share a process in the embedded launcher; a global registry would mix
 * them). Gauges read the controller at scrape time.
 */
export function agentMetricsSource({ registry, controller, sfu, cascadeLinks, pipeConditioner }: AgentMetricsOptions): MetricsSource {
  registry.setDefaultLabels({ node_id: controller.nodeId, region: controller.region });
  const registers = [registry];

  const loadGauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers, collect() { this.set(read()); } });
  loadGauge('geo_sfu_agent_participants', 'Participants on this node, as of the last heartbeat.', () => controller.load.participants);
  loadGauge('geo_sfu_agent_rooms', 'Rooms on this node, as of the last heartbeat.', () => controller.load.rooms);
  loadGauge('geo_sfu_agent_cpu_load', "CPU used by the agent and its SFU workers over the cores it may use.", () => controller.load.cpu);
  loadGauge('geo_sfu_agent_memory_load', 'Resident memory of the agent and its SFU workers over the memory it may use.', () => controller.load.memory);
  loadGauge('geo_sfu_agent_max_participants', 'Participants this node accepts (operator override or configuration).', () => controller.maxParticipants);
  loadGauge('geo_sfu_agent_transports', 'WebRTC, plain and pipe transports on this node, as of the last heartbeat.', () => controller.load.transports);
  loadGauge('geo_sfu_agent_producers', 'Producers on this node, as of the last heartbeat.', () => controller.load.producers);
  loadGauge('geo_sfu_agent_consumers', 'Consumers on this node, as of the last heartbeat.', () => controller.load.consumers);
  loadGauge('geo_sfu_agent_workers', 'mediasoup workers running on this node.', () => controller.load.workers);
  loadGauge('geo_sfu_agent_registered', '1 while registered with the router.', () => Number(controller.registered));
  loadGauge('geo_sfu_agent_draining', '1 while draining.', () => Number(controller.draining));
  loadGauge('geo_sfu_agent_cordoned', '1 while cordoned by an operator.', () => Number(controller.cordoned));
  // Of the whole process (shared when several agents run in one process), for leak watching (bench/soak.ts).
  loadGauge('geo_sfu_agent_process_resident_memory_bytes', "Resident memory of the agent's Node.js process (not its mediasoup workers).", () => process.memoryUsage.rss());
  loadGauge('geo_sfu_agent_process_heap_used_bytes', "V8 heap used by the agent's Node.js process.", () => process.memoryUsage().heapUsed);
  loadGauge('geo_sfu_agent_process_heap_total_bytes', "V8 heap reserved by the agent's Node.js process (used, garbage and free).", () => process.memoryUsage().heapTotal);
  loadGauge('geo_sfu_agent_process_external_memory_bytes', "Memory of Buffers and other objects outside the V8 heap in the agent's Node.js process.", () => process.memoryUsage().external);
  liveHeapGauge(registry, 'geo_sfu_agent_process_heap_after_gc_bytes');
  new Gauge({
    name: 'geo_sfu_agent_process_heap_space_size_bytes',
    help: "V8 heap reserved by the agent's Node.js process, by space (new_space, old_space, code_space...): which part a growing heap total is.",
    labelNames: ['space'] as const,
    registers,
    collect() {
      for (const space of v8.getHeapSpaceStatistics()) this.set({ space: space.space_name }, space.space_size);
    },
  });
  new Gauge({
    name: 'geo_sfu_agent_process_active_resources',
    help: "Resources keeping the agent process's event loop alive (process.getActiveResourcesInfo()), by type: TCPSocketWrap (sockets), TCPServerWrap, Timeout...",
    labelNames: ['type'] as const,
    registers,
    collect() {
      this.reset();
      for (const type of process.getActiveResourcesInfo()) this.inc({ type });
    },
  });
  if (sfu) {
    new Gauge({
      name: 'geo_sfu_agent_sfu_objects',
      help: "mediasoup routers, transports, producers and consumers alive on this agent's workers now (their observers' count).",
      labelNames: ['kind'] as const,
      registers,
      collect() {
        const totals = { routers: 0, transports: 0, producers: 0, consumers: 0 };
        for (const worker of sfu.pool.workers) for (const kind of Object.keys(totals) as (keyof typeof totals)[]) totals[kind] += worker.counts[kind];
        for (const [kind, n] of Object.entries(totals)) this.set({ kind }, n);
      },
    });
  }

  const peerLabels = ['peer_region', 'peer_node'] as const;
  new Gauge({
    name: 'geo_sfu_agent_peer_rtt_ms',
    help: 'Smoothed RTT to each peer agent, ms.',
    labelNames: peerLabels,
    registers,
    collect() {
      // Reset first, so a peer the router stopped listing disappears from the scrape.
      this.reset();
      for (const peer of controller.peers()) {
        if (peer.rtt.rttMs !== null) this.set({ peer_region: peer.region, peer_node: peer.nodeId }, peer.rtt.rttMs);
      }
    },
  });
  new Gauge({
    name: 'geo_sfu_agent_peer_loss',
    help: 'Fraction of recent probes to each peer agent that were lost.',
    labelNames: peerLabels,
    registers,
    collect() {
      this.reset();
      for (const peer of controller.peers()) this.set({ peer_region: peer.region, peer_node: peer.nodeId }, peer.rtt.loss);
    },
  });

  new Gauge({
    name: 'geo_sfu_agent_pipes',
    help: 'Cascade pipe links (one per room and remote node) by remote region and state.',
    labelNames: ['remote_region', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const link of cascadeLinks?.() ?? []) this.inc({ remote_region: link.remoteRegion, state: link.connected ? 'connected' : 'connecting' });
    },
  });
  new Gauge({
    name: 'geo_sfu_agent_piped_producers',
    help: 'Producers forwarded over cascade pipes, by direction (exported from here, imported here).',
    labelNames: ['direction'] as const,
    registers,
    collect() {
      const links = cascadeLinks?.() ?? [];
      this.set({ direction: 'exported' }, links.reduce((n, l) => n + l.exported, 0));
      this.set({ direction: 'imported' }, links.reduce((n, l) => n + l.imported, 0));
    },
  });
  // The pipe conditioner (region-agent/cascade/conditioner.ts), summed over every cascade link so far.
  const conditionerCounter = (name: string, help: string, read: (s: ConditionerStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        const stats = pipeConditioner?.();
        this.reset();
        if (stats) this.inc(read(stats));
      },
    });
  conditionerCounter('geo_sfu_agent_pipe_fec_rebuilt_total', 'Cascade media packets rebuilt from FEC repair symbols by the pipe conditioner (lost on the way, or late: a late original after its rebuild counts in _duplicates_total).', (s) => s.rebuilt);
  conditionerCounter('geo_sfu_agent_pipe_fec_parity_bytes_total', 'Bytes of FEC repair symbols (datagrams) the pipe conditioner sent.', (s) => s.parityBytes);
  conditionerCounter('geo_sfu_agent_pipe_sent_bytes_total', 'Bytes of the pipe transports\' datagrams the pipe conditioner sent on cascade links (repair symbols and loss reports excluded).', (s) => s.sentBytes);
  conditionerCounter('geo_sfu_agent_pipe_reorder_held_total', 'Cascade video packets the pipe conditioner held behind a gap (reordering or loss).', (s) => s.held);
  conditionerCounter('geo_sfu_agent_pipe_reorder_released_total', 'Held cascade video packets released because the reordering allowance passed (the gap before them went to mediasoup\'s NACK).', (s) => s.releasedAfterHold);
  conditionerCounter('geo_sfu_agent_pipe_reorder_gave_up_total', 'Cascade media packets the pipe conditioner stopped waiting for (neither arrived nor rebuilt within the reordering allowance; audio\'s gaps at once).', (s) => s.gaveUp);
  conditionerCounter('geo_sfu_agent_pipe_late_total', 'Cascade media packets that came after the pipe conditioner had given up their gap (delivered anyway, out of order).', (s) => s.late);
  conditionerCounter('geo_sfu_agent_pipe_duplicates_total', 'Second copies dropped by the pipe conditioner (a late original or a retransmission after its rebuild).', (s) => s.duplicates);
  conditionerCounter('geo_sfu_agent_pipe_dropped_total', 'Datagrams on a pipe conditioner\'s wire socket dropped: another sender, a malformed or out-of-window repair symbol, or one that does not fit the packets held or would rebuild the wrong packet.', (s) => s.dropped);
  const workerDeaths = new Counter({ name: 'geo_sfu_agent_worker_deaths_total', help: 'mediasoup workers that died (each replaced; its rooms were lost).', registers });
  sfu?.pool.on('workerdied', () => workerDeaths.inc());

  const heartbeats = new Counter({ name: 'geo_sfu_agent_heartbeats_total', help: 'Heartbeats the router acknowledged.', registers });
  const heartbeatFailures = new Counter({ name: 'geo_sfu_agent_heartbeat_failures_total', help: 'Heartbeats the router did not acknowledge.', registers });
  const registrations = new Counter({ name: 'geo_sfu_agent_registrations_total', help: 'Successful registrations (more than one: the router forgot this node).', registers });
  controller.on('heartbeat', () => heartbeats.inc());
  controller.on('heartbeatfailure', () => heartbeatFailures.inc());
  controller.on('registered', () => registrations.inc());

  return { contentType: registry.contentType, render: () => registry.metrics() };
}
