import { request } from 'undici';
import type { AllocateSfuResponse } from '../../shared/schemas/index.ts';

export type AllocateResult = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AllocateSfuResponse & { error?: { field?: string; code: string; message: string } };
};

export async function allocate(url: string, body: unknown, headers: Record<string, string> = {}): Promise<AllocateResult> {
  const res = await request(`${url}/allocate`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as AllocateResult['body'] };
}
