import { Type, type Static } from '@sinclair/typebox';

/** Room, participant and node ids: 1–128 chars of [A-Za-z0-9._:-]. */
export const ID_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';
export const Id = Type.String({ pattern: ID_PATTERN, minLength: 1, maxLength: 128 });
export const RegionId = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' });
export const Url = Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://' });

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    field: Type.Optional(Type.String()),
  }),
});
export type ErrorBody = Static<typeof ErrorBody>;

export const RttStats = Type.Object({
  /** Smoothed RTT (EWMA), ms; null until a probe has answered. */
  rttMs: Type.Union([Type.Number(), Type.Null()]),
  /** Median of the recent samples, ms. */
  medianMs: Type.Union([Type.Number(), Type.Null()]),
  jitterMs: Type.Number(),
  /** Fraction of recent probes lost, 0..1. */
  loss: Type.Number(),
  samples: Type.Integer(),
});
export type RttStats = Static<typeof RttStats>;

/**
 * A mediasoup router's RTP capabilities, passed through as the SFU gave them (mediasoup-client
 * checks them in depth when a Device loads them); here only their outline, bounded.
 */
export const RtpCapabilitiesObject = Type.Object(
  {
    codecs: Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 64 }),
    headerExtensions: Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 64 }),
  },
  { additionalProperties: true },
);
