/**
 * `npm start`: the embedded default (router + agents on loopback). Prints the URLs and the
 * development credentials, and stops everything on Ctrl-C.
 */
import { ConfigError } from '../../shared/errors.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { launchEmbedded } from './launcher.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const embedded = await launchEmbedded({
    config,
    fixedPorts: true,
    // With a WAN profile the cascade's media crosses the emulated links too.
    pipeRelays: config.wanProfile !== '',
    onOutput: (name, line) => process.stdout.write(`[${name}] ${line}\n`),
  });
  const c = embedded.credentials;
  process.stdout.write(
    [
      '',
      'geo-sfu embedded default',
      `  router     ${embedded.routerUrl}   (GET /regions, POST /allocate, /docs)`,
      `  dashboard  ${embedded.routerUrl}/#token=${encodeURIComponent(c.adminToken)}`,
      `  demo       ${embedded.routerUrl}/demo?room=demo   (open it in two tabs, each emulating another region)`,
      ...embedded.agents.map((a) => `  ${a.nodeId.padEnd(10)} ${a.publicUrl}${a.publicUrl !== a.directUrl ? `  (via WAN delay proxy → ${a.directUrl})` : ''}`),
      `  WAN profile ${config.wanProfile ? `${config.wanProfile} (agent links and cascade media delayed)` : 'none (all regions on loopback, ~0 ms apart)'}`,
      '',
      'development credentials (generated for this run unless set in the environment):',
      `  GEO_SFU_API_KEY=${c.apiKey}`,
      `  GEO_SFU_ADMIN_TOKEN=${c.adminToken}`,
      '',
      'try:',
      `  curl -s ${embedded.routerUrl}/regions`,
      `  curl -s -X POST ${embedded.routerUrl}/allocate -H 'content-type: application/json' -d '{"roomId":"demo","participantId":"alice","latencies":{"us-west":20,"us-east":75,"eu-west":140,"apac":175}}'`,
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping...\n');
    embedded.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  embedded.router.on('exit', (code) => {
    if (!stopping) {
      process.stderr.write(`router exited (${code}); stopping\n`);
      stop();
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`geo-sfu: ${err instanceof ConfigError ? err.message : (err as Error).stack}\n`);
  process.exit(1);
});
