/**
 * For the application's backend (Node): grants let a browser call POST /allocate for one room and
 * participant without holding the API key (`Authorization: Bearer <grant>`). Sign with a key the
 * router lists in GEO_SFU_GRANT_SECRETS and its GEO_SFU_GRANT_AUDIENCE (default "geo-sfu").
 * Kept out of 'geo-sfu/sdk' because it needs node:crypto.
 */
export { createGrant, type CreateGrantOptions, type GrantClaims, type Permissions } from '../shared/tokens.ts';
export type { TokenKey } from '../shared/config/load.ts';

/**
 * Application webhooks (GEO_SFU_APP_WEBHOOK_URLS): check each delivery with `verifyAppWebhook`
 * before trusting its event (docs/webhooks.md).
 */
export {
  APP_WEBHOOK_SIGNATURE_HEADER,
  APP_WEBHOOK_TIMESTAMP_HEADER,
  APP_WEBHOOK_TOLERANCE_MS,
  AppWebhookReplayGuard,
  verifyAppWebhook,
  type AppWebhookFailure,
  type VerifyAppWebhookInput,
  type VerifyAppWebhookResult,
} from '../shared/app-webhook-signature.ts';
export type { AppEvent, AppEventName, AppTrack, ParticipantLeftReason, ParticipantMoveReason, TrackSourceName } from '../shared/app-webhook-events.ts';
