/**
 * `npm start`: the embedded default (router + agents on loopback). Prints the URLs and the
 * credentials it generated (never one it was given), and stops everything on Ctrl-C (exit 0).
 * When the router stops by itself (it could not start: a port in use, a bad setting), everything
 * stops and the exit code is 1.
 */
import { ConfigError } from '../../shared/errors.ts';
import { CONFIG_SPEC, loadConfig } from '../../shared/config/index.ts';
import { type Credentials, type Embedded, launchEmbedded } from './launcher.ts';
import { jsonLine, prettyLine } from './log-lines.ts';

const VARIABLE: Record<keyof Credentials, string> = {
  clusterSecret: CONFIG_SPEC.clusterSecret.env,
  tokenSecrets: CONFIG_SPEC.tokenSecrets.env,
  adminToken: CONFIG_SPEC.adminToken.env,
  apiKey: CONFIG_SPEC.apiKey.env,
  grantSecrets: CONFIG_SPEC.grantSecrets.env,
};

/** The agents whose clients' media crosses lossy, jittery relays, for the banner. */
function clientRelayed(embedded: Embedded): string {
  const relays = embedded.clientRelays;
  if (!relays) return '';
  const nodes = embedded.agents.filter((a) => relays.addressOf(a.nodeId) !== undefined).map((a) => `${a.nodeId} at ${relays.addressOf(a.nodeId)}`);
  return `; client media relayed for ${nodes.join(', ')}`;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const embedded = await launchEmbedded({
    config,
    fixedPorts: true,
    // With a WAN profile the cascade's media crosses the emulated links too.
    pipeRelays: config.wanProfile !== '',
    // Readable on a terminal; JSON lines (one object each, `proc` naming the process) otherwise.
    onOutput: process.stdout.isTTY ? (name, line) => process.stdout.write(`${prettyLine(name, line, true)}\n`) : (name, line) => process.stdout.write(`${jsonLine(name, line)}\n`),
  });
  const c = embedded.credentials;
  const generated = embedded.generated;
  // What a person uses (API key, admin token) is shown when generated; a secret from the
  // environment never is (the operator has it, and logs are not the place for it).
  const shown = (name: 'apiKey' | 'adminToken') =>
    generated.has(name) ? `  ${VARIABLE[name]}=${c[name]}   (generated for this run)` : `  ${VARIABLE[name]}   set in the environment (not shown)`;
  const internal = (['clusterSecret', 'tokenSecrets', 'grantSecrets'] as const).filter((name) => generated.has(name)).map((name) => VARIABLE[name]);
  process.stdout.write(
    [
      '',
      'geo-sfu embedded default',
      `  router     ${embedded.routerUrl}   (GET /regions, POST /allocate, /docs)`,
      generated.has('adminToken')
        ? `  dashboard  ${embedded.routerUrl}/#token=${encodeURIComponent(c.adminToken)}`
        : `  dashboard  ${embedded.routerUrl}/   (sign in with GEO_SFU_ADMIN_TOKEN)`,
      `  demo       ${embedded.routerUrl}/demo?room=demo   (open it in two tabs, each emulating another region)`,
      ...embedded.agents.map((a) => `  ${a.nodeId.padEnd(10)} ${a.publicUrl}${a.publicUrl !== a.directUrl ? `  (via WAN delay proxy → ${a.directUrl})` : ''}`),
      `  WAN profile ${config.wanProfile ? `${config.wanProfile} (agent links and cascade media delayed${clientRelayed(embedded)})` : 'none (all regions on loopback, ~0 ms apart)'}`,
      '',
      'credentials:',
      shown('apiKey'),
      shown('adminToken'),
      ...(internal.length > 0 ? [`  generated for this run, used between the processes (not shown): ${internal.join(', ')}`] : []),
      '',
      'try:',
      `  curl -s ${embedded.routerUrl}/regions`,
      `  curl -s -X POST ${embedded.routerUrl}/allocate -H 'content-type: application/json' -d '{"roomId":"demo","participantId":"alice","latencies":{"us-west":20,"us-east":75,"eu-west":140,"apac":175}}'`,
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping...\n');
    embedded.close().then(() => process.exit(exitCode));
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  const routerExited = (code: number | null, signal: NodeJS.Signals | null) => {
    if (stopping) return;
    process.stderr.write(`geo-sfu: the router exited (${code ?? signal}); stopping\n`);
    stop(1);
  };
  // It may have failed already (a port in use) while the agents were being started.
  if (embedded.router.exitCode !== null || embedded.router.signalCode !== null) routerExited(embedded.router.exitCode, embedded.router.signalCode);
  else embedded.router.on('exit', routerExited);
  for (const agent of embedded.agents) {
    agent.process.on('exit', (code) => {
      // An agent drained by an operator (`geo-sfu nodes drain`) leaves with 0; the others run on.
      if (!stopping && code !== 0) process.stderr.write(`geo-sfu: agent ${agent.nodeId} exited (${code}); the others keep running\n`);
    });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`geo-sfu: ${err instanceof ConfigError ? err.message : (err as Error).stack}\n`);
  process.exit(1);
});
