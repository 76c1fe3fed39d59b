import { signedCall } from '../../shared/signed-http.ts';

const ATTEMPTS = 4;

/**
 * POSTs an event to an operator's webhook, signed like agent calls (so the receiver can verify
 * it with the cluster secret), retried with exponential backoff; rejects after the last attempt.
 */
export async function deliverSignedWebhook(webhookUrl: string, secret: string, body: unknown): Promise<void> {
  const url = new URL(webhookUrl);
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    try {
      const res = await signedCall({ secret, baseUrl: url.origin, method: 'POST', path: url.pathname + url.search, body, timeoutMs: 5_000 });
      if (res.statusCode < 300) return;
      lastError = new Error(`webhook answered ${res.statusCode}`);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
