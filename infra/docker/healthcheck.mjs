// Container HEALTHCHECK: GET http://<host>:<port><path> (default /healthz) must answer 2xx within
// 2 s. The port is the agent's when GEO_SFU_AGENT_REGION is set, else the router's, read from the
// same GEO_SFU_* variables the process reads. Exit 0 healthy, 1 not.
const env = process.env;
const isAgent = (env.GEO_SFU_AGENT_REGION ?? '') !== '';
const host = (isAgent ? env.GEO_SFU_AGENT_HOST : env.GEO_SFU_ROUTER_HOST) ?? '127.0.0.1';
const port = (isAgent ? env.GEO_SFU_AGENT_PORT : env.GEO_SFU_ROUTER_PORT) ?? (isAgent ? '8081' : '8080');
const target = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
const path = process.argv[2] ?? '/healthz';
const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}${path}`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`unhealthy: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
