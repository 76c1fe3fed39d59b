import type { Heartbeat, NodeRegistration } from '../../shared/schemas/index.ts';
import type { NodeRecord, NodeRegistryStore } from './types.ts';

/** Node registry of a single router. Records are copied in and out, as Redis serialises them. */
export class MemoryNodeRegistry implements NodeRegistryStore {
  private readonly nodes = new Map<string, NodeRecord>();

  async register(registration: NodeRegistration, nowMs: number): Promise<void> {
    // A registration is a new agent process: its heartbeat seq starts again from 0.
    this.nodes.set(registration.nodeId, {
      registration: structuredClone(registration),
      registeredAtMs: nowMs,
      lastHeartbeatMs: nowMs,
      heartbeat: null,
    });
  }

  async heartbeat(heartbeat: Heartbeat, nowMs: number): Promise<boolean> {
    const node = this.nodes.get(heartbeat.nodeId);
    if (!node) return false;
    if (node.heartbeat && heartbeat.seq < node.heartbeat.seq) return true;
    node.heartbeat = structuredClone(heartbeat);
    node.lastHeartbeatMs = nowMs;
    return true;
  }

  async deregister(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
  }

  async list(): Promise<NodeRecord[]> {
    return [...this.nodes.values()].map((node) => structuredClone(node));
  }

  async close(): Promise<void> {
    this.nodes.clear();
  }
}
