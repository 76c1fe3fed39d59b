import { Argument, Command, CommanderError, Option } from 'commander';
import { CONFIG_SPEC } from '../shared/config/spec.ts';
import { DEFAULT_REGION_TIMEOUT_MS, DEFAULT_SAMPLES } from './defaults.ts';
import { idArg, intArg, latencyArg, numberArg } from './args.ts';
import {
  DEFAULT_INPUT,
  DEFAULT_HOURS_PER_MONTH,
  INSTANCE_NAMES,
  LAYER_NAMES,
  type CapacityInput,
  type InstanceName,
  type LayerName,
} from './capacity.ts';
import { Context } from './context.ts';
import { CliError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, UsageError } from './errors.ts';

const ROUTER_ENV = CONFIG_SPEC.routerUrl.env;

const API_KEY_ENV = CONFIG_SPEC.apiKey.env;

const ADMIN_TOKEN_ENV = CONFIG_SPEC.adminToken.env;

const EXIT_HELP = `
Exit codes:
  0  success
  1  runtime error: router or region unreachable, router refused the request (400 naming a field,
     404, 503 no capacity), unexpected answer
  2  bad arguments: the message names the flag or argument

Environment:
  ${ROUTER_ENV}   router URL when --router is not given (default ${CONFIG_SPEC.routerUrl.default})
  ${API_KEY_ENV}      API key, sent as "Authorization: Bearer <key>" when set (probe, allocate)
  ${ADMIN_TOKEN_ENV}  admin token, sent as "Authorization: Bearer <token>" to the admin routes
                       (rooms, nodes cordon/uncordon/drain, alerts, scaling)`;

interface RouterOpts {
  router?: string;
  json?: boolean;
}

const routerOption = () => new Option('--router <url>', `router base URL (default: $${ROUTER_ENV} or ${CONFIG_SPEC.routerUrl.default})`);
const jsonOption = () => new Option('--json', 'print machine-readable JSON only (on stdout)');
const probeOptions = (cmd: Command) =>
  cmd
    .addOption(new Option('--samples <n>', 'timed probes per node (a warm-up probe is sent first and discarded)').argParser(intArg(1, 1000)).default(DEFAULT_SAMPLES))
    .addOption(new Option('--timeout <ms>', 'per-region deadline for all its probes, ms').argParser(intArg(100, 600_000)).default(DEFAULT_REGION_TIMEOUT_MS))
    .addOption(new Option('--no-progress', 'no progress bars on stderr (they show only on a TTY anyway)'));

/**
 * Runs one command: an action's errors are mapped to exit codes here, so every command reports
 * alike. `json` decides whether a runtime error is also printed as JSON on stdout.
 */
function run<A extends unknown[]>(routerOf: (...args: A) => RouterOpts, fn: (ctx: Context, ...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    const opts = routerOf(...args);
    const ctx = new Context(opts.router);
    try {
      await fn(ctx, ...args);
    } catch (err) {
      reportError(err, opts.json);
    } finally {
      await ctx.close().catch(() => undefined);
    }
  };
}

function reportError(err: unknown, json: boolean | undefined): void {
  if (err instanceof UsageError) {
    process.stderr.write(`geo-sfu: error: ${err.message}\n(run with --help for usage)\n`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  const cli = err instanceof CliError ? err : new CliError('INTERNAL', (err as Error)?.message ?? String(err));
  const { printed, ...details } = cli.details;
  if (json && !printed) process.stdout.write(`${JSON.stringify({ error: { code: cli.code, message: cli.message, ...details } }, null, 2)}\n`);
  process.stderr.write(`geo-sfu: error: ${cli.message}\n`);
  process.exitCode = EXIT_RUNTIME;
}

export function buildProgram(): Command {
  const program = new Command('geo-sfu')
    .description('Command-line client of the geo-sfu global router: probe regions, allocate, inspect regions and rooms, plan capacity.')
    .version(process.env.npm_package_version ?? '0.1.0', '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`geo-sfu: ${text}`) })
    .addHelpText('after', EXIT_HELP);

  probeOptions(
    program
      .command('probe')
      .description("measure this machine's RTT to every region (GET each node's probeUrl over keep-alive) and recommend the lowest-median region")
      .addOption(routerOption())
      .addOption(jsonOption())
      .addHelpText('after', '\nColumns: min, median, p95 (nearest rank) RTT; jitter = mean |difference| of consecutive samples;\nloss = unanswered / sent. Progress bars go to stderr when it is a TTY.\n' + EXIT_HELP),
  ).action(run((o: RouterOpts & ProbeOpts) => o, async (ctx, o) => (await import('./commands/probe.ts')).probeCommand(ctx, o)));

  probeOptions(
    program
      .command('allocate')
      .description('POST /allocate for a participant and show the decision: home and edge region, node, cascade, reasons, candidate scores')
      .addOption(new Option('--room <id>', 'room id').argParser(idArg).makeOptionMandatory())
      .addOption(new Option('--participant <id>', 'participant id (default: cli-<random>)').argParser(idArg))
      .addOption(
        new Option('--latency <region=ms...>', 'RTT measured to a region, repeatable (us-west=80 eu-west=140); without it the regions are probed first and the medians sent').argParser(
          latencyArg,
        ),
      )
      .addOption(
        new Option('--exclude-node <id>', 'a node the client just failed on, repeatable').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), idArg(v)]),
      )
      .addOption(new Option('--dry-run', 'only show where the router would place the participant now (POST /allocate/dry-run): no seat reserved, no room pinned, no token'))
      .addOption(routerOption())
      .addOption(jsonOption())
      .addHelpText('after', EXIT_HELP),
  ).action(run((o: RouterOpts & ProbeOpts & AllocateOpts) => o, async (ctx, o) => (await import('./commands/allocate.ts')).allocateCommand(ctx, o)));

  program
    .command('regions')
    .description('regions with their nodes (health, state, stress, load, router probe RTT) and the inter-region RTT matrix')
    .addOption(routerOption())
    .addOption(jsonOption())
    .addHelpText('after', EXIT_HELP)
    .action(run((o: RouterOpts) => o, async (ctx, o) => (await import('./commands/regions.ts')).regionsCommand(ctx, o)));

  const rooms = program
    .command('rooms')
    .description(`rooms (admin token, $${ADMIN_TOKEN_ENV}): list, show ROOM (also \`rooms ROOM\`), kick ROOM PARTICIPANT`)
    .addHelpText('after', EXIT_HELP);
  rooms
    .command('show', { isDefault: true })
    .description('a room: home region, participants by region, cascade links')
    .addArgument(new Argument('<roomId>', 'room id').argParser(idArg))
    .addOption(routerOption())
    .addOption(jsonOption())
    .addHelpText('after', EXIT_HELP)
    .action(run((_id: string, o: RouterOpts) => o, async (ctx, id, o) => (await import('./commands/rooms.ts')).roomShowCommand(ctx, id, o)));
  rooms
    .command('list')
    .description('every room: home region, participants (joined), edge regions')
    .addOption(routerOption())
    .addOption(jsonOption())
    .addHelpText('after', EXIT_HELP)
    .action(run((o: RouterOpts) => o, async (ctx, o) => (await import('./commands/rooms.ts')).roomListCommand(ctx, o)));
  rooms
    .command('kick')
    .description('remove a participant: its seat is released, its sessions closed, its grants issued until now refused')
    .addArgument(new Argument('<roomId>', 'room id').argParser(idArg))
    .addArgument(new Argument('<participantId>', 'participant id').argParser(idArg))
    .addOption(routerOption())
    .addOption(jsonOption())
    .addHelpText('after', EXIT_HELP)
    .action(
      run(
        (_room: string, _participant: string, o: RouterOpts) => o,
        async (ctx, room, participant, o) => (await import('./commands/rooms.ts')).roomKickCommand(ctx, room, participant, o),
      ),
    );

  const nodes = program
    .command('nodes')
    .description(`the nodes: list (default), cordon, uncordon, drain NODE (the actions need the admin token, $${ADMIN_TOKEN_ENV}; the router forwards them to the node's agent)`)
    .addHelpText('after', EXIT_HELP);
  nodes
    .command('list', { isDefault: true })
    .description('every node: region, state, stress, CPU, memory, participants (joined + pending / max), rooms, router probe RTT')
    .addOption(routerOption())
    .addOption(jsonOption())
    .addHelpText('after', EXIT_HELP)
    .action(run((o: RouterOpts) => o, async (ctx, o) => (await import('./commands/nodes.ts')).nodesCommand(ctx, o)));
  const actions = {
    cordon: 'take no new rooms (its rooms and participants stay)',
    uncordon: 'take new rooms again',
    drain: 'take no new rooms, move its clients away before GEO_SFU_DRAIN_DEADLINE_MS, then deregister and stop',
  } as const;
  for (const [action, description] of Object.entries(actions) as Array<[keyof typeof actions, string]>) {
    nodes
      .command(action)
      .description(`the node: ${description}`)
      .addArgument(new Argument('<nodeId>', 'node id').argParser(idArg))
      .addOption(routerOption())
      .addOption(jsonOption())
      .addHelpText('after', EXIT_HELP)
      .action(run((_id: string, o: RouterOpts) => o, async (ctx, id, o) => (await import('./commands/nodes.ts')).nodeActionCommand(ctx, action, id, o)));
  }

  program
    .command('alerts')
    .description('active quality alerts: participants whose packet loss or RTT crossed its threshold (admin token)')
    .addOption(routerOption())
    .addOption(jsonOption())
    .addHelpText('after', EXIT_HELP)
    .action(run((o: RouterOpts) => o, async (ctx, o) => (await import('./commands/monitoring.ts')).alertsCommand(ctx, o)));

  program
    .command('scaling')
    .description("the scaling manager's state per region and its recent decisions (admin token)")
    .addOption(routerOption())
    .addOption(jsonOption())
    .addHelpText('after', EXIT_HELP)
    .action(run((o: RouterOpts) => o, async (ctx, o) => (await import('./commands/monitoring.ts')).scalingCommand(ctx, o)));

  program
    .command('capacity')
    .description("plan SFU nodes, workers, bandwidth and monthly cost (the scaling guide's tables with its egress arithmetic corrected)")
    .addOption(new Option('--participants <n>', 'participants per room (N ≥ 2)').argParser(intArg(2, 100_000)).makeOptionMandatory())
    .addOption(new Option('--rooms <r>', 'rooms of that size').argParser(intArg(1, 10_000_000)).default(DEFAULT_INPUT.rooms))
    .addOption(new Option('--bitrate-kbps <b>', 'video bitrate per publisher, kbit/s (top layer with --simulcast)').argParser(numberArg({ exclusiveMin: 0, max: 1_000_000 })).default(DEFAULT_INPUT.bitrateKbps))
    .addOption(new Option('--simulcast', 'publishers send 3 layers (1.0 + 0.3 + 0.1 of b); receivers get one'))
    .addOption(new Option('--receive-layer <layer>', 'layer receivers get with --simulcast').choices(LAYER_NAMES).default(DEFAULT_INPUT.receiveLayer))
    .addOption(new Option('--audio', 'add a 32 kbit/s Opus stream per publisher (doubles consumers)'))
    .addOption(new Option('--regions <k>', "regions each room's participants spread over").argParser(intArg(1, 1000)).default(DEFAULT_INPUT.regions))
    .addOption(new Option('--target-utilisation <u>', 'fraction of worker capacity to plan for').argParser(numberArg({ exclusiveMin: 0, max: 1 })).default(DEFAULT_INPUT.targetUtilisation))
    .addOption(new Option('--instance <type>', 'SFU node type (prices from the scaling guide)').choices(INSTANCE_NAMES).default(DEFAULT_INPUT.instance))
    .addOption(new Option('--hours-per-month <h>', 'hours a month the load runs (egress is billed per GB)').argParser(numberArg({ exclusiveMin: 0, max: 744 })).default(DEFAULT_HOURS_PER_MONTH))
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Model (details in cli/capacity.ts): per room of N people each publishing bitrate b, an SFU receives
N·b and sends N·(N−1)·b. Simulcast: ingress 1.4·b per publisher, egress at the receivers' layer.
CPU: N·(N−1) consumers per room per stream kind, 500 consumers per worker (one per vCPU) at the
target utilisation. Architecture by total participants: P2P mesh [2, 9), single SFU [9, 50),
SFU multi [50, 200), SFU cluster [200, 1000), global [1000, ∞).` + EXIT_HELP,
    )
    .action(
      run(
        (o: CapacityOpts, _cmd: Command) => ({ json: o.json === true }),
        async (ctx, o, cmd: Command) => {
          if (!o.simulcast && cmd.getOptionValueSource('receiveLayer') === 'cli') throw new UsageError('--receive-layer', 'needs --simulcast');
          const input: CapacityInput = {
            participants: o.participants,
            rooms: o.rooms,
            bitrateKbps: o.bitrateKbps,
            simulcast: o.simulcast === true,
            receiveLayer: o.receiveLayer,
            audio: o.audio === true,
            regions: o.regions,
            targetUtilisation: o.targetUtilisation,
            instance: o.instance,
            hoursPerMonth: o.hoursPerMonth,
          };
          (await import('./commands/capacity.ts')).capacityCommand(ctx, input, { json: o.json === true });
        },
      ),
    );

  return program;
}

interface ProbeOpts {
  samples: number;
  timeout: number;
  progress: boolean;
}
interface AllocateOpts {
  room: string;
  participant?: string;
  latency?: Record<string, number>;
  excludeNode?: string[];
  dryRun?: boolean;
}
interface CapacityOpts {
  participants: number;
  rooms: number;
  bitrateKbps: number;
  simulcast?: boolean;
  receiveLayer: LayerName;
  audio?: boolean;
  regions: number;
  targetUtilisation: number;
  instance: InstanceName;
  hoursPerMonth: number;
  json?: boolean;
}

/** Parses argv and runs; resolves to the exit code. Commander's own errors (already printed) exit 2. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return EXIT_OK;
      if (err.code === 'commander.executeSubCommandAsync') return EXIT_RUNTIME;
      return EXIT_USAGE;
    }
    reportError(err, false);
    return EXIT_RUNTIME;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
}
