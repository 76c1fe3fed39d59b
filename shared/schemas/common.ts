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
 * checks them in depth when a Device loads them): their fields declared, so every /allocate
 * answer that carries them serializes them with compiled code (a third of the time of an
 * undeclared object's), bounded, and open to fields a later mediasoup adds.
 */
const RtcpFeedback = Type.Object({ type: Type.String({ maxLength: 64 }), parameter: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: true });
export const RtpCapabilitiesObject = Type.Object(
  {
    codecs: Type.Array(
      Type.Object(
        {
          kind: Type.String({ maxLength: 16 }),
          mimeType: Type.String({ maxLength: 64 }),
          preferredPayloadType: Type.Optional(Type.Integer({ minimum: 0, maximum: 127 })),
          clockRate: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
          channels: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
          parameters: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.String({ maxLength: 256 }), Type.Number(), Type.Boolean()]), { maxProperties: 32 })),
          rtcpFeedback: Type.Optional(Type.Array(RtcpFeedback, { maxItems: 32 })),
        },
        { additionalProperties: true },
      ),
      { maxItems: 64 },
    ),
    headerExtensions: Type.Array(
      Type.Object(
        {
          kind: Type.String({ maxLength: 16 }),
          uri: Type.String({ maxLength: 256 }),
          preferredId: Type.Integer({ minimum: 1, maximum: 255 }),
          preferredEncrypt: Type.Optional(Type.Boolean()),
          direction: Type.Optional(Type.String({ maxLength: 16 })),
        },
        { additionalProperties: true },
      ),
      { maxItems: 64 },
    ),
  },
  { additionalProperties: true },
);
