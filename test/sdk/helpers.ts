import { fileURLToPath } from 'node:url';
import { FakeHandler, testFakeParameters } from 'mediasoup-client';
import { FakeMediaStreamTrack } from 'fake-mediastreamtrack';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import { loadConfig } from '../../shared/config/index.ts';
import type { RegionsResponse } from '../../shared/schemas/index.ts';
import { GeoSfuClient, type GeoSfuClientOptions } from '../../sdk/index.ts';

export const PROFILE = fileURLToPath(new URL('../../infra/embedded/sample-wan-profile.json', import.meta.url));
/** Grants: the application's backend signs with this key; the router lists it in GEO_SFU_GRANT_SECRETS. */
export const GRANT_KEY = { kid: 'app-1', secret: 'sdk-test-grant-secret-0123456789abcdef' };
export const GRANT_AUDIENCE = 'geo-sfu';

export interface Cluster {
  embedded: Embedded;
  output: string[];
}

/** The embedded default with the sample WAN profile (or `profile`), grants required at /allocate, fast liveness. */
export async function startCluster(extraEnv: Record<string, string> = {}, profile = PROFILE): Promise<Cluster> {
  const env = {
    GEO_SFU_LOG_LEVEL: 'warn',
    GEO_SFU_PROBE_INTERVAL_MS: '250',
    GEO_SFU_GRANT_SECRETS: `${GRANT_KEY.kid}:${GRANT_KEY.secret}`,
    GEO_SFU_REQUIRE_AUTH: 'true',
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    // These rooms are shaped on purpose (who joins where) to exercise failover and drain; live
    // rebalancing would move people under them. test/rebalance/ turns it on and tests it.
    GEO_SFU_REBALANCE: 'false',
    GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE: '0',
    ...extraEnv,
  };
  const config = loadConfig({ GEO_SFU_WAN_PROFILE: profile, ...env });
  const output: string[] = [];
  const embedded = await launchEmbedded({ config, fixedPorts: false, env, onOutput: (name, line) => output.push(`[${name}] ${line}`) });
  await waitHealthy(embedded, output);
  return { embedded, output };
}

/** Until every node is alive and probed and the inter-region matrix is measured (placement uses it). */
export async function waitHealthy(embedded: Embedded, output: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const body = (await (await fetch(`${embedded.routerUrl}/regions`)).json()) as RegionsResponse;
      const pairs = Object.values(body.interRegion).flatMap((row) => Object.values(row));
      const n = body.regions.length;
      // Every node alive and probed, and the inter-region matrix measured (placement uses it).
      if (n > 0 && body.regions.every((r) => r.healthy && r.nodes.every((x) => x.state === 'alive' && x.probe.samples >= 3)) && pairs.length === n * (n - 1) && pairs.every((p) => p.samples >= 3)) return;
    } catch {
      // router not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`cluster not healthy within 60 s:\n${output.slice(-30).join('\n')}`);
}

/** An SDK client whose media layer is mediasoup-client's FakeHandler: the real signaling and SFU, no ICE/DTLS. */
export function fakeMediaClient(routerUrl: string, opts: Partial<GeoSfuClientOptions> = {}): GeoSfuClient {
  return new GeoSfuClient({ routerUrl, handlerFactory: FakeHandler.createFactory(testFakeParameters), ...opts });
}

export function fakeTrack(kind: 'audio' | 'video'): MediaStreamTrack {
  return new FakeMediaStreamTrack({ kind }) as unknown as MediaStreamTrack;
}

export { waitFor } from '../utils/wait.ts';

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Until the router lists `nodeId` alive again (after restartAgent). */
export async function waitForNodeAlive(routerUrl: string, nodeId: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const body = (await (await fetch(`${routerUrl}/regions`)).json()) as RegionsResponse;
    if (body.regions.some((r) => r.nodes.some((n) => n.nodeId === nodeId && n.state === 'alive'))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${nodeId} not alive again within ${timeoutMs} ms`);
}
