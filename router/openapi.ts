/**
 * The OpenAPI description's credentials (/docs "Authorize"), and which each route takes. All three
 * travel as `Authorization: Bearer <credential>`; a route lists the ones it accepts, `{}` meaning
 * it may be called without one.
 */
export const SECURITY_SCHEMES = {
  apiKey: { type: 'http', scheme: 'bearer', description: 'GEO_SFU_API_KEY: for application backends (POST /allocate on behalf of their clients; also accepted as `x-api-key`)' },
  grant: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWS',
    description: "A grant signed by the application's backend with a GEO_SFU_GRANT_SECRETS key (createGrant in geo-sfu/sdk/server): for one room and participant",
  },
  admin: { type: 'http', scheme: 'bearer', description: 'GEO_SFU_ADMIN_TOKEN: for operators (rooms, nodes, alerts, scaling, the dashboard stream)' },
} as const;

type Requirement = Partial<Record<keyof typeof SECURITY_SCHEMES, string[]>>;

export const ADMIN_ONLY: Requirement[] = [{ admin: [] }];
/** POST /allocate and its dry run: an API key or a grant; anonymous unless GEO_SFU_REQUIRE_AUTH. */
export const ALLOCATE_CALLERS = (requireAuth: boolean): Requirement[] => [{ apiKey: [] }, { grant: [] }, ...(requireAuth ? [] : [{}])];
