/** Probe defaults, in a module of their own so `--help` can show them without loading the probing code. */
export const DEFAULT_SAMPLES = 10;
export const DEFAULT_REGION_TIMEOUT_MS = 10_000;
