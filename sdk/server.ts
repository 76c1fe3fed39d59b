/**
 * For the application's backend (Node): grants let a browser call POST /allocate for one room and
 * participant without holding the API key (`Authorization: Bearer <grant>`). Sign with a key the
 * router lists in GEO_SFU_GRANT_SECRETS and its GEO_SFU_GRANT_AUDIENCE (default "geo-sfu").
 * Kept out of 'geo-sfu/sdk' because it needs node:crypto.
 */
export { createGrant, type CreateGrantOptions, type GrantClaims, type Permissions } from '../shared/tokens.ts';
export type { TokenKey } from '../shared/config/load.ts';
