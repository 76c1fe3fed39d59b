import { readFileSync } from 'node:fs';
import { type ConnectionOptions, rootCertificates } from 'node:tls';
import { Agent, setGlobalDispatcher } from 'undici';
import type { GeoSfuConfig } from './config/index.ts';

/** The certificate and key a listener serves HTTPS (and WSS) with; null: plain HTTP. */
export function serverTls(config: Pick<GeoSfuConfig, 'tlsCertFile' | 'tlsKeyFile'>): { cert: Buffer; key: Buffer } | null {
  return config.tlsCertFile === '' ? null : { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) };
}

/** TLS options of outgoing connections: the system's CAs plus those of GEO_SFU_TLS_CA_FILE (an internal CA). */
export function clientTls(caFile: string): ConnectionOptions {
  return caFile === '' ? {} : { ca: [...rootCertificates, readFileSync(caFile, 'utf8')] };
}

/**
 * Makes every outgoing call of this process that does not bring its own connection pool (signed
 * router↔agent and agent↔agent calls, webhooks) trust GEO_SFU_TLS_CA_FILE as well. Called once by
 * the router's and the agent's entry points; the probers' pools take clientTls() themselves.
 */
export function trustCaForOutgoingCalls(caFile: string): void {
  if (caFile !== '') setGlobalDispatcher(new Agent({ connect: clientTls(caFile) }));
}
