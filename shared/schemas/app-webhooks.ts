import { type Static, Type } from '@sinclair/typebox';
import { Id } from './common.ts';

/** Where a published track comes from (the producer's `appData.source`, if it names one of these). */
export const TrackSource = Type.Union([
  Type.Literal('camera'),
  Type.Literal('microphone'),
  Type.Literal('screen_share'),
  Type.Literal('screen_share_audio'),
  Type.Literal('unknown'),
]);
export type TrackSource = Static<typeof TrackSource>;

/** One simulcast (or SVC) encoding of a track, as its publisher declared it. */
export const TrackLayer = Type.Object(
  {
    rid: Type.Optional(Type.String({ maxLength: 32 })),
    maxBitrate: Type.Optional(Type.Integer({ minimum: 0 })),
    scalabilityMode: Type.Optional(Type.String({ maxLength: 16 })),
  },
  { additionalProperties: false },
);
export type TrackLayer = Static<typeof TrackLayer>;

export const TrackInfo = Type.Object(
  {
    /** The SFU's producer id. */
    trackId: Type.String({ minLength: 1, maxLength: 64 }),
    kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
    source: TrackSource,
    /** One entry per encoding (several: simulcast). */
    layers: Type.Array(TrackLayer, { maxItems: 16 }),
  },
  { additionalProperties: false },
);
export type TrackInfo = Static<typeof TrackInfo>;

/** Agent→router report (signed): a participant of this node published or unpublished a track. */
export const TrackEvent = Type.Object(
  {
    nodeId: Id,
    roomId: Id,
    participantId: Id,
    allocationId: Type.String({ minLength: 1, maxLength: 64 }),
    event: Type.Union([Type.Literal('published'), Type.Literal('unpublished')]),
    track: TrackInfo,
  },
  { additionalProperties: false },
);
export type TrackEvent = Static<typeof TrackEvent>;
