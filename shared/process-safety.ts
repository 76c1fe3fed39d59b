/**
 * What a router or agent process does with an error nothing caught. A rejected promise nobody
 * awaited is logged and counted, and the process keeps serving: the promise's work failed, the
 * process state did not. An exception thrown out of a callback may have left state half-changed,
 * so it is logged and counted, the process closes (at most `drainTimeoutMs`), and exits non-zero
 * for its supervisor to restart it: never silently, never kept running in an unknown state.
 */
import { Counter, type Registry } from 'prom-client';

export type UnexpectedErrorKind = 'unhandled_rejection' | 'uncaught_exception';

/** The part of a pino logger this needs. */
export interface ProcessSafetyLogger {
  error(obj: object, msg: string): void;
  fatal(obj: object, msg: string): void;
}

export interface ProcessSafetyOptions {
  /** What runs here ("router", "region agent"), for the log lines. */
  name: string;
  logger: ProcessSafetyLogger;
  /** Counts the error (geo_sfu_unexpected_errors_total on the process's /metrics). */
  count: (kind: UnexpectedErrorKind) => void;
  /** Closes the process's servers and resources before it exits after an uncaught exception. */
  close: () => Promise<void>;
  /** Default 5000. */
  drainTimeoutMs?: number;
}

/**
 * `geo_sfu_unexpected_errors_total{kind}` on `registry` (the router's and each agent's /metrics),
 * both kinds present from the start so a scrape reads 0 rather than nothing.
 */
export function unexpectedErrorsCounter(registry: Registry): Counter<'kind'> {
  const counter = new Counter({
    name: 'geo_sfu_unexpected_errors_total',
    help: 'Errors nothing caught: unhandled promise rejections (the process keeps serving) and uncaught exceptions (the process closes and exits non-zero). Anything above 0 is a bug.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  for (const kind of ['unhandled_rejection', 'uncaught_exception'] satisfies UnexpectedErrorKind[]) counter.inc({ kind }, 0);
  return counter;
}

/** Exit code after an uncaught exception (70: EX_SOFTWARE, an internal error). */
export const UNCAUGHT_EXCEPTION_EXIT_CODE = 70;

/** Installs the process-wide handlers (once per process, at start). */
export function installProcessSafety(options: ProcessSafetyOptions): void {
  const { name, logger, count } = options;
  const drainTimeoutMs = options.drainTimeoutMs ?? 5_000;
  let exiting = false;

  const onRejection = (reason: unknown) => {
    count('unhandled_rejection');
    logger.error({ err: reason }, `${name}: unhandled promise rejection (counted in geo_sfu_unexpected_errors_total; still serving)`);
  };
  const onException = (err: Error) => {
    count('uncaught_exception');
    if (exiting) {
      logger.fatal({ err }, `${name}: another uncaught exception while closing`);
      return;
    }
    exiting = true;
    // Non-zero even if the process ended by itself while closing.
    process.exitCode = UNCAUGHT_EXCEPTION_EXIT_CODE;
    logger.fatal({ err, drainTimeoutMs }, `${name}: uncaught exception; closing and exiting with code ${UNCAUGHT_EXCEPTION_EXIT_CODE}`);
    // Kept ref'd: when close() hangs, this ends the process and says why.
    setTimeout(() => {
      logger.fatal({ drainTimeoutMs }, `${name}: not closed within ${drainTimeoutMs} ms; exiting`);
      process.exit(UNCAUGHT_EXCEPTION_EXIT_CODE);
    }, drainTimeoutMs);
    Promise.resolve()
      .then(options.close)
      .then(
        () => process.exit(UNCAUGHT_EXCEPTION_EXIT_CODE),
        (closeErr: unknown) => {
          logger.fatal({ err: closeErr }, `${name}: closing failed; exiting`);
          process.exit(UNCAUGHT_EXCEPTION_EXIT_CODE);
        },
      );
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
}
