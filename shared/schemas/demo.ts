import { Type, type Static } from '@sinclair/typebox';
import { Id } from './common.ts';

/** POST /demo/grant (development only, GEO_SFU_DEMO_GRANTS): a grant for this room and participant. */
export const DemoGrantRequest = Type.Object({ roomId: Id, participantId: Id }, { additionalProperties: false });
export type DemoGrantRequest = Static<typeof DemoGrantRequest>;

export const DemoGrantResponse = Type.Object({
  /** Present as `Authorization: Bearer` to POST /allocate; bound to `roomId` and `participantId`. */
  grant: Type.String(),
  roomId: Type.String(),
  participantId: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
});
export type DemoGrantResponse = Static<typeof DemoGrantResponse>;
