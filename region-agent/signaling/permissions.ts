import { connectRefusal, requestRefusal } from './refusals.ts';
import type { ParticipantPermissions, RequestName, RequestPayload } from '../../shared/signaling.ts';

/** A join token's `perm` claim is absent or `{ publish, subscribe, publishData? }` of booleans (else TOKEN_MALFORMED at connect). */
export function assertPermissionsClaim(perm: unknown): void {
  if (perm === undefined) return;
  const { publish, subscribe, publishData } = (typeof perm === 'object' && perm !== null ? perm : {}) as Record<string, unknown>;
  if (typeof publish !== 'boolean' || typeof subscribe !== 'boolean' || (publishData !== undefined && typeof publishData !== 'boolean')) {
    throw connectRefusal('TOKEN_MALFORMED', 'token claim perm is not { publish, subscribe, publishData? } of booleans');
  }
}

/**
 * The join token's `perm`, enforced per request (see ./README.md "Permissions"): produce needs
 * `publish`, produceData `publishData`, consume and consumeData `subscribe`; a send transport needs
 * `publish` or `publishData`, a recv transport `subscribe`. Checked before anything is looked up or
 * created, so a refusal (FORBIDDEN) changes nothing.
 */
export function assertPermitted<N extends RequestName>(perm: ParticipantPermissions, name: N, payload: RequestPayload<N>): void {
  const refuse = (needs: string) => {
    throw requestRefusal('FORBIDDEN', `${name}: this participant's permissions do not include ${needs}`);
  };
  switch (name) {
    case 'produce':
      if (!perm.publish) refuse('publish');
      return;
    case 'produceData':
      if (!perm.publishData) refuse('publishData');
      return;
    case 'consume':
    case 'consumeData':
      if (!perm.subscribe) refuse('subscribe');
      return;
    case 'createWebRtcTransport': {
      const { direction } = payload as RequestPayload<'createWebRtcTransport'>;
      if (direction === 'send' && !perm.publish && !perm.publishData) refuse('publish or publishData (a send transport)');
      if (direction === 'recv' && !perm.subscribe) refuse('subscribe (a recv transport)');
      return;
    }
    default:
      return;
  }
}
