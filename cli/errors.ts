/**
 * Exit codes and the errors that map to them. Every command ends with one of:
 *   0  success
 *   1  runtime error: the router or a region could not be reached, or the router refused the
 *      request (400 naming a field, 404, 503 no capacity, ...), or it answered something unexpected
 *   2  bad arguments: a flag or argument is missing or invalid (the message names it)
 */
export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/** A local argument problem (exit 2). `flag` is the flag or argument, e.g. `--participants`. */
export class UsageError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag} ${message}`);
    this.name = 'UsageError';
  }
}

/** A runtime failure (exit 1) with a stable code for --json output. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'CliError';
  }
}
