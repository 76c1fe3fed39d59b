import type { DashboardSnapshot } from '../../shared/schemas/index.ts';
import { SseParser } from '../../web/src/sse.ts';

/** The first `snapshot` event of a router's GET /events (read with the dashboard's own parser), or the refusal. */
export async function firstDashboardEvent(
  routerUrl: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | null; snapshot: DashboardSnapshot | null; body: unknown }> {
  const abort = new AbortController();
  const res = await fetch(`${routerUrl}/events`, { headers, signal: abort.signal });
  if (res.status !== 200) return { status: res.status, type: res.headers.get('content-type'), snapshot: null, body: await res.json() };
  const parser = new SseParser();
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error('stream ended before a snapshot');
      const snapshot = parser.push(value).find((m) => m.event === 'snapshot');
      if (snapshot) return { status: 200, type: res.headers.get('content-type'), snapshot: JSON.parse(snapshot.data) as DashboardSnapshot, body: null };
    }
  } finally {
    abort.abort();
  }
}
