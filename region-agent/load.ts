import type { NodeLoad } from '../shared/schemas/index.ts';
import type { SfuLoadSnapshot } from '../sfu/sfu-load.ts';

/**
 * What the SFU tells the agent about itself (sfu/'s own snapshot type). The agent reports its own
 * load, never the host's (several agents may share a host), so the SFU reports its workers' usage
 * rather than the agent sampling the machine.
 */
export type SfuLoad = SfuLoadSnapshot;

/** Implemented by the SFU; may be async (mediasoup's worker.getResourceUsage() is). */
export type SfuLoadProvider = () => SfuLoad | Promise<SfuLoad>;

/** The agent before an SFU is attached: no media, no workers. */
export const noSfu: SfuLoadProvider = () => ({
  participants: 0,
  rooms: 0,
  transports: 0,
  producers: 0,
  consumers: 0,
  workers: 0,
  workerCpuTimeMs: 0,
  workerRssBytes: 0,
});

const count = (n: number) => Math.max(0, Math.round(n));
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

/**
 * Turns the agent's process usage plus the SFU's into NodeLoad: CPU is the CPU time used since
 * the previous sample over the wall time elapsed, divided by the cores the agent may use;
 * memory is resident size over the memory it may use.
 */
export class LoadSampler {
  #ownCpu = process.cpuUsage();
  /** Null until the first sample: the workers' first interval has no baseline and counts as idle. */
  #workerCpuTimeMs: number | null = null;
  #at = process.hrtime.bigint();

  constructor(
    private readonly provider: SfuLoadProvider,
    private readonly cpuCores: number,
    private readonly memoryBytes: number,
  ) {}

  async sample(): Promise<NodeLoad> {
    const sfu = await this.provider();
    const at = process.hrtime.bigint();
    const ownCpu = process.cpuUsage();
    const ownCpuMs = (ownCpu.user - this.#ownCpu.user + ownCpu.system - this.#ownCpu.system) / 1_000;
    const workerCpuMs = this.#workerCpuTimeMs === null ? 0 : Math.max(0, sfu.workerCpuTimeMs - this.#workerCpuTimeMs);
    const wallMs = Number(at - this.#at) / 1e6;
    this.#ownCpu = ownCpu;
    this.#workerCpuTimeMs = sfu.workerCpuTimeMs;
    this.#at = at;
    return {
      cpu: wallMs > 0 ? round4((ownCpuMs + workerCpuMs) / wallMs / this.cpuCores) : 0,
      memory: round4((process.memoryUsage.rss() + sfu.workerRssBytes) / this.memoryBytes),
      participants: count(sfu.participants),
      rooms: count(sfu.rooms),
      transports: count(sfu.transports),
      producers: count(sfu.producers),
      consumers: count(sfu.consumers),
      workers: count(sfu.workers),
    };
  }
}
