import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Line {
  type: string;
  t: number;
  /** performance.now() in the test process when the line arrived. */
  at: number;
  [key: string]: unknown;
}
export interface Stats {
  framesDecoded: number;
  packets: { audio: number; video: number };
  /** inbound-rtp packetsLost per kind, and the NACKs sent for video (0 when the stats lack them). */
  lost: { audio: number; video: number };
  nacks: number;
  /** Per peer: video frames and audio chunks rendered (by wrtc sinks), whatever edge or track they came on. */
  received: Record<string, { video: number; audio: number }>;
  consumers: number;
  edge: string;
  mode: 'sfu' | 'p2p';
  /** room.participants: peer id → region ("p2p" for a peer reached directly). */
  regions: Record<string, string>;
  firstFrameMs: number | null;
}

/** An SDK participant with real WebRTC (@roamhq/wrtc) in its own process: test/sdk/wrtc-participant.ts. */
export interface Participant {
  name: string;
  lines: Line[];
  stats(): Stats | undefined;
  events(event: string): unknown[];
  send(cmd: 'pause' | 'resume' | 'leave' | 'exit'): void;
  waitFor<T>(what: string, probe: (p: Participant) => T | undefined | null | false, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
  process: ChildProcess;
}

/** `allocation`: join this /allocate answer instead of allocating (then `grant` is not needed). */
export function startParticipant(o: {
  routerUrl: string;
  roomId: string;
  participantId: string;
  grant?: string;
  latencies?: Record<string, number>;
  publish?: boolean;
  allocation?: unknown;
}): Participant {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/sdk/wrtc-participant.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ROUTER_URL: o.routerUrl,
      ROOM_ID: o.roomId,
      PARTICIPANT_ID: o.participantId,
      ...(o.grant !== undefined ? { GRANT: o.grant } : {}),
      ...(o.allocation !== undefined ? { ALLOCATION: JSON.stringify(o.allocation) } : {}),
      ...(o.latencies ? { LATENCIES: JSON.stringify(o.latencies) } : {}),
      PUBLISH: o.publish === false ? '0' : '1',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  let stderr = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push({ ...(JSON.parse(line) as Line), at: performance.now() });
    } catch {
      stderr += `${line}\n`;
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const p: Participant = {
    name: o.participantId,
    lines,
    process: child,
    stats: () => lines.filter((l) => l.type === 'stats').at(-1) as Stats | undefined,
    events: (event) => lines.filter((l) => l.type === 'event' && l.event === event).map((l) => l.msg),
    send: (cmd) => child.stdin!.write(`${JSON.stringify({ cmd })}\n`),
    waitFor: async (what, probe, timeoutMs = 20_000) => {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const v = probe(p);
        if (v !== undefined && v !== null && v !== false) return v;
        const error = lines.find((l) => l.type === 'error');
        if (error) throw new Error(`${o.participantId}: error while waiting for ${what}: ${String(error.message)}`);
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${o.participantId} exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}; stderr: ${stderr.slice(-2_000)}`);
        if (performance.now() > deadline) throw new Error(`${o.participantId}: timed out after ${timeoutMs} ms waiting for ${what}; last lines: ${JSON.stringify(lines.slice(-4))}; stderr: ${stderr.slice(-1_000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  return p;
}

/**
 * When media came back after `since`: the first stats line where `value` grows again after having
 * stalled (not grown between two lines) after `since`. Null while it has not.
 */
export function resumedAt(p: Participant, since: number, value: (s: Stats) => number): number | null {
  const stats = p.lines.filter((l) => l.type === 'stats' && l.at >= since) as unknown as Array<Stats & { at: number }>;
  let stalled = false;
  for (let i = 1; i < stats.length; i++) {
    const grew = value(stats[i]!) > value(stats[i - 1]!);
    if (!grew) stalled = true;
    else if (stalled) return stats[i]!.at;
  }
  return null;
}
