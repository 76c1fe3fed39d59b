import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../shared/errors.ts';

/** Compares a presented credential with the configured one in constant time (via their hashes). */
function sameSecret(presented: string, configured: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(configured).digest();
  return timingSafeEqual(a, b);
}

function bearer(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (typeof header === 'string' && header.startsWith('Bearer ')) return header.slice(7);
  const key = req.headers['x-api-key'];
  return typeof key === 'string' ? key : null;
}

/** True when the request carries the server-side API key (such callers may pass `clientIp`). */
export function isApiKeyCaller(req: FastifyRequest, apiKey: string): boolean {
  const presented = bearer(req);
  return apiKey !== '' && presented !== null && sameSecret(presented, apiKey);
}

/** preHandler for admin routes. */
export function requireAdmin(adminToken: string) {
  return async (req: FastifyRequest): Promise<void> => {
    const presented = bearer(req);
    if (adminToken === '' || presented === null || !sameSecret(presented, adminToken)) {
      throw new UnauthorizedError('admin credential required (Authorization: Bearer <GEO_SFU_ADMIN_TOKEN>)');
    }
  };
}
