// Container HEALTHCHECK: GET <scheme>://<host>:<port><path> (default /healthz) must answer 2xx
// within 2 s. The port is the agent's when GEO_SFU_AGENT_REGION is set, else the router's, read
// from the same GEO_SFU_* variables the process reads; HTTPS when GEO_SFU_TLS_CERT_FILE is set (the
// process then serves nothing else). The certificate names the public host, not the loopback
// address probed here, so its name is not checked: this only asks whether the process answers.
// Exit 0 healthy, 1 not.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const env = process.env;
const isAgent = (env.GEO_SFU_AGENT_REGION ?? '') !== '';
const host = (isAgent ? env.GEO_SFU_AGENT_HOST : env.GEO_SFU_ROUTER_HOST) ?? '127.0.0.1';
const port = (isAgent ? env.GEO_SFU_AGENT_PORT : env.GEO_SFU_ROUTER_PORT) ?? (isAgent ? '8081' : '8080');
const target = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
const tls = (env.GEO_SFU_TLS_CERT_FILE ?? '') !== '';
const path = process.argv[2] ?? '/healthz';
const url = `${tls ? 'https' : 'http'}://${target.includes(':') ? `[${target}]` : target}:${port}${path}`;

const status = await new Promise((resolve, reject) => {
  const req = (tls ? httpsRequest : httpRequest)(url, { timeout: 2000, ...(tls ? { rejectUnauthorized: false } : {}) }, (res) => {
    res.resume();
    resolve(res.statusCode ?? 0);
  });
  req.on('timeout', () => req.destroy(new Error('timed out')));
  req.on('error', reject);
  req.end();
}).catch((err) => {
  process.stderr.write(`unhealthy: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
if (status < 200 || status > 299) {
  process.stderr.write(`unhealthy: ${url}: HTTP ${status}\n`);
  process.exit(1);
}
process.exit(0);
