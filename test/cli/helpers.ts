import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI as a user would (`node cli/bin.js ...`, the `geo-sfu` bin) in a child process.
 * The caller's GEO_SFU_ROUTER_URL / GEO_SFU_API_KEY / GEO_SFU_ADMIN_TOKEN are removed unless given in `env`.
 */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  const base = { ...process.env };
  delete base.GEO_SFU_ROUTER_URL;
  delete base.GEO_SFU_API_KEY;
  delete base.GEO_SFU_ADMIN_TOKEN;
  return new Promise((resolve) => {
    execFile(process.execPath, ['cli/bin.js', ...args], { cwd: ROOT, env: { ...base, ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface StubRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A throwaway HTTP server on a free loopback port answering from `handler`; records requests. */
export async function startStub(
  /** null: never answer (a black-holed probe). */
  handler: (req: StubRequest, baseUrl: string) => { status: number; body?: unknown; headers?: Record<string, string> } | null,
): Promise<{ url: string; requests: StubRequest[]; close(): Promise<void> }> {
  const requests: StubRequest[] = [];
  let baseUrl = '';
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body };
      requests.push(r);
      const out = handler(r, baseUrl);
      if (out === null) return;
      res.writeHead(out.status, { ...(out.body === undefined ? {} : { 'content-type': 'application/json' }), ...out.headers });
      res.end(out.body === undefined ? undefined : JSON.stringify(out.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: baseUrl,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
