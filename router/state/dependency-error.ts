import { DependencyUnavailableError } from '../../shared/errors.ts';

/** Maps a backend failure (timeout, refused or closed connection) to the 503 the router answers. */
export function dependencyFailure(dependency: 'redis' | 'postgres', err: unknown): DependencyUnavailableError {
  if (err instanceof DependencyUnavailableError) return err;
  const failure = new DependencyUnavailableError(`${dependency}: ${(err as Error).message}`);
  failure.cause = err;
  return failure;
}
