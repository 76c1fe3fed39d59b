import type { NodeRegistry } from '../registry/node-registry.ts';
import type { RoomStore } from '../state/types.ts';

export interface RehomerDeps {
  registry: NodeRegistry;
  rooms: RoomStore;
  /** Only the leader re-homes (several routers may share the store). */
  isLeader: () => boolean;
  onRehome?: (roomId: string, from: string, to: string) => void;
}

/**
 * When a node dies, rooms whose home was on it get a new home: the live node serving most of the
 * room's remaining participants (ties: catalog order of their regions, then node id), in a region
 * the room's policy allows (none such: the home stays, and /allocate places within the policy or refuses). The change
 * is a compare-and-set on the room's epoch, so it cannot race a pin or another re-home. The
 * participants who were on the dead node come back through /allocate (the SDK excludes the
 * failed node), which replaces their records.
 */
export class Rehomer {
  #handled = new Set<string>();
  #running = false;

  constructor(
    private readonly deps: RehomerDeps,
    private readonly regionOrder: readonly string[],
  ) {}

  /** Re-homes the rooms of nodes that died since the last call; returns how many rooms moved. */
  async tick(): Promise<number> {
    // Heartbeat ages mean nothing until the registry has read the store for a dead-after period.
    if (this.#running || !this.deps.isLeader() || !this.deps.registry.livenessSettled()) return 0;
    this.#running = true;
    try {
      const { nodes } = this.deps.registry.placementView();
      const dead = new Set(nodes.filter((n) => n.state === 'dead').map((n) => n.nodeId));
      const newlyDead = [...dead].filter((id) => !this.#handled.has(id));
      // A node that came back may die again later.
      this.#handled = new Set([...this.#handled].filter((id) => dead.has(id)));
      if (newlyDead.length === 0) return 0;
      const alive = new Map(nodes.filter((n) => n.state !== 'dead').map((n) => [n.nodeId, n.region]));
      let moved = 0;
      for (const roomId of await this.deps.rooms.listRoomIds()) {
        const state = await this.deps.rooms.getRoom(roomId);
        if (!state || !dead.has(state.room.homeNodeId)) continue;
        const allowed = state.room.policy ? new Set(state.room.policy.allowedRegions) : null;
        const counts = new Map<string, number>();
        for (const p of state.participants) {
          const region = alive.get(p.nodeId);
          if (region !== undefined && (!allowed || allowed.has(region))) counts.set(p.nodeId, (counts.get(p.nodeId) ?? 0) + 1);
        }
        const best = [...counts.entries()].sort(
          ([a, ca], [b, cb]) => cb - ca || this.regionOrder.indexOf(alive.get(a)!) - this.regionOrder.indexOf(alive.get(b)!) || a.localeCompare(b),
        )[0];
        if (!best) continue;
        const to = { region: alive.get(best[0])!, nodeId: best[0] };
        if (await this.deps.rooms.rehome(roomId, state.room.epoch, to)) {
          moved++;
          this.deps.onRehome?.(roomId, state.room.homeRegion, to.region);
        }
      }
      for (const id of newlyDead) this.#handled.add(id);
      return moved;
    } finally {
      this.#running = false;
    }
  }
}
