import { resolveAdminToken, resolveApiKey, resolveRouterUrl } from './args.ts';
import { CliError } from './errors.ts';
import type { RouterClient } from './router-client.ts';

/** What a command needs from its surroundings: the router (lazily), and where output goes. */
export class Context {
  #client: RouterClient | null = null;
  #routerUrl: string | null = null;

  constructor(
    private readonly routerFlag: string | undefined,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Resolved (and validated: a UsageError names --router or GEO_SFU_ROUTER_URL) on first use. */
  get routerUrl(): string {
    this.#routerUrl ??= resolveRouterUrl(this.routerFlag, this.env);
    return this.#routerUrl;
  }

  /** The router client, loaded on first use (undici and the schema checks stay out of `--help` and `capacity`). */
  async client(): Promise<RouterClient> {
    if (!this.#client) {
      const { RouterClient } = await import('./router-client.ts');
      this.#client = new RouterClient({ baseUrl: this.routerUrl, apiKey: resolveApiKey(this.env), adminToken: resolveAdminToken(this.env) });
    }
    return this.#client;
  }

  out(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  warn(text: string): void {
    process.stderr.write(`geo-sfu: ${text}\n`);
  }

  /** Ends the command with exit 1 after its output was printed. */
  fail(code: string, message: string): never {
    throw new CliError(code, message, { printed: true });
  }

  async close(): Promise<void> {
    await this.#client?.close();
  }
}
