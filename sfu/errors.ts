/** Errors thrown by the sfu/ library carry a stable code for the signaling layer. */
export type SfuErrorCode =
  | 'CLOSED'
  | 'PEER_EXISTS'
  | 'NOT_FOUND'
  | 'CANNOT_CONSUME'
  | 'NO_RTP_CAPABILITIES'
  | 'INVALID_ARGUMENT';

export class SfuError extends Error {
  override readonly name = 'SfuError';
  readonly code: SfuErrorCode;

  constructor(code: SfuErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** `value ?? fallback`, which must be a finite number > 0 (else INVALID_ARGUMENT). */
export function positiveOption(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new SfuError('INVALID_ARGUMENT', `${name} must be > 0 (got ${v})`);
  return v;
}
