/**
 * Typed errors shared by every process. Each carries a stable `code` and the HTTP status it maps
 * to; the router's and agent's error handlers turn them into `{ error: { code, message, field? } }`.
 */
export class GeoSfuError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input: names the offending field. 400. */
export class BadRequestError extends GeoSfuError {
  constructor(message: string, field?: string) {
    super('BAD_REQUEST', 400, message, field);
  }
}

/** Missing, forged, expired or replayed credentials. 401. */
export class UnauthorizedError extends GeoSfuError {
  constructor(message: string, code = 'UNAUTHORIZED') {
    super(code, 401, message);
  }
}

/** Valid credentials that do not allow this (a grant for another room). 403. */
export class ForbiddenError extends GeoSfuError {
  constructor(message: string, field?: string, code = 'FORBIDDEN') {
    super(code, 403, message, field);
  }
}

export class NotFoundError extends GeoSfuError {
  constructor(message: string) {
    super('NOT_FOUND', 404, message);
  }
}

/** Conflict or wrong state (for example a stale room epoch). 409. */
export class ConflictError extends GeoSfuError {
  constructor(message: string, code = 'CONFLICT') {
    super(code, 409, message);
  }
}

/** Over a rate limit. 429 (the limiter sets Retry-After). */
export class TooManyRequestsError extends GeoSfuError {
  constructor(message: string) {
    super('RATE_LIMITED', 429, message);
  }
}

/**
 * No node can take the participant right now. 503 with Retry-After. `NO_ALLOWED_REGION`: no region
 * the room's region policy allows can (never a fallback outside it).
 */
export class NoCapacityError extends GeoSfuError {
  constructor(
    message: string,
    readonly retryAfterSeconds = 5,
    code: 'NO_CAPACITY' | 'NO_ALLOWED_REGION' = 'NO_CAPACITY',
  ) {
    super(code, 503, message);
  }
}

/** A dependency (Redis, PostgreSQL) could not be reached in time. 503 with Retry-After. */
export class DependencyUnavailableError extends GeoSfuError {
  constructor(
    message: string,
    readonly retryAfterSeconds = 2,
  ) {
    super('DEPENDENCY_UNAVAILABLE', 503, message);
  }
}

/**
 * A socket.io request or connection refused with a protocol error code (the agent's signaling, the
 * router's P2P relay): sent to the client as `{ code, message, field? }`.
 */
export class Refusal extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'Refusal';
  }
}

/** Invalid configuration at start; lists every problem found. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid geo-sfu configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}
