import { Refusal } from '../../shared/errors.ts';
import type { ConnectErrorCode, RequestErrorCode, SignalingError } from '../../shared/signaling.ts';

/** A connection refused: its connect_error code is one of shared/signaling.ts's list, which the SDK reads too. */
export const connectRefusal = (code: ConnectErrorCode, message: string, field?: string): Refusal => new Refusal(code, message, field);

/** A request refused (thrown by a handler): its ack's error code is one of shared/signaling.ts's list. */
export const requestRefusal = (code: RequestErrorCode, message: string): Refusal => new Refusal(code, message);

/** A request's error ack, for refusals made before a handler runs. */
export const requestError = (code: RequestErrorCode, message: string, field?: string): SignalingError => ({ code, message, ...(field !== undefined ? { field } : {}) });
