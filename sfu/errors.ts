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
