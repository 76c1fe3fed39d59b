import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AppEvent, AppWebhookReplayGuard, verifyAppWebhook } from '../../sdk/server.ts';
import type { TokenKey } from '../../shared/config/index.ts';

export const APP_KEYS: TokenKey[] = [{ kid: 'app-2', secret: 'w'.repeat(40) }];

/**
 * An application's webhook endpoint, as a real HTTP server: every delivery is checked with the
 * server SDK's verifier (a failed check answers 401 and is recorded), then answered `answer`.
 * It can be stopped (connections refused) and started again on its port.
 */
export class WebhookReceiver {
  /** Verified deliveries answered 2xx, in arrival order. */
  readonly delivered: Array<{ event: AppEvent; atMs: number }> = [];
  /** Verified deliveries answered otherwise. */
  readonly refusedWith: AppEvent[] = [];
  /** Deliveries that failed verification, by failure. */
  readonly unverified: string[] = [];
  /** Status of the next answers. */
  answer = 200;
  /** Each answer waits this long (a slow receiver). */
  delayMs = 0;
  port = 0;
  readonly #guard = new AppWebhookReplayGuard();
  #server: http.Server | null = null;

  private constructor(private readonly keys: readonly TokenKey[]) {}

  static async start(keys: readonly TokenKey[] = APP_KEYS): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(keys);
    await receiver.listen();
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/geo-sfu`;
  }

  /** Delivered event ids, in arrival order. */
  ids(): string[] {
    return this.delivered.map((d) => d.event.id);
  }

  async listen(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const verified = verifyAppWebhook({ body: Buffer.concat(chunks), headers: req.headers, keys: this.keys, replayGuard: this.#guard });
        const reply = (status: number) => {
          res.statusCode = status;
          res.end();
        };
        if (!verified.ok) {
          this.unverified.push(verified.failure);
          return reply(401);
        }
        const status = this.answer;
        setTimeout(() => {
          if (status >= 200 && status < 300) this.delivered.push({ event: verified.event, atMs: Date.now() });
          else this.refusedWith.push(verified.event);
          reply(status);
        }, this.delayMs);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops listening: deliveries are refused at the TCP level until `listen()`. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    await closed;
  }
}

/** Checks a delivered stream: per room, sequence numbers increase in arrival order once duplicates (by event id) are dropped. */
export function perRoomOrder(delivered: ReadonlyArray<{ event: AppEvent }>): Map<string, number[]> {
  const seen = new Set<string>();
  const rooms = new Map<string, number[]>();
  for (const { event } of delivered) {
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    rooms.set(event.roomId, [...(rooms.get(event.roomId) ?? []), event.seq]);
  }
  return rooms;
}
