/**
 * What the infra files may refer to, read from the code itself: the settings (CONFIG_SPEC), the
 * HTTP routes each process serves, and the Prometheus metric names it registers.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_SPEC } from '../../shared/config/spec.ts';
import { ROOT } from './helpers.ts';

export const KNOWN_ENV: ReadonlySet<string> = new Set(Object.values(CONFIG_SPEC).map((s) => s.env));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const text = (component: 'router' | 'region-agent' | 'shared') => sources(join(ROOT, component)).map((f) => readFileSync(f, 'utf8')).join('\n');

/** GET routes registered by a process: `app.get('/path', ...)`, its own or shared/'s (GET /metrics, served by both). */
export function getRoutes(component: 'router' | 'region-agent'): Set<string> {
  const routes = new Set<string>();
  for (const m of `${text(component)}\n${text('shared')}`.matchAll(/\.get\(\s*'([^']+)'/g)) if (m[1]) routes.add(m[1]);
  return routes;
}

/**
 * Metric names registered in router/, region-agent/ and shared/: `name: 'geo_sfu_…'` in a metric's
 * options, or the name passed as a string to a metric factory (`loadGauge('geo_sfu_…', …)`).
 */
export function metricNames(): Set<string> {
  const names = new Set<string>();
  // shared/: metrics both processes register from one definition (geo_sfu_unexpected_errors_total).
  for (const component of ['router', 'region-agent', 'shared'] as const) {
    for (const m of text(component).matchAll(/(?:name:\s*|\(\s*)'(geo_sfu_[a-z0-9_]+)'/g)) if (m[1]) names.add(m[1]);
  }
  return names;
}

/** A series name as Prometheus exposes it, back to the metric that registers it (histograms add suffixes). */
export function baseMetric(series: string, known: ReadonlySet<string>): string {
  if (known.has(series)) return series;
  const stripped = series.replace(/_(bucket|sum|count)$/, '');
  return stripped;
}

/** geo_sfu_* metric names in a PromQL expression (not label values or strings). */
export function metricsInPromql(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...withoutStrings.matchAll(/\b(geo_sfu_[a-z0-9_]+)\b/g)].map((m) => m[1] ?? '');
}

/** Plausible values for every setting a deployment file fills from a secret or the downward API. */
export const SAMPLE_SECRETS: Record<string, string> = {
  GEO_SFU_CLUSTER_SECRET: 'c'.repeat(48),
  GEO_SFU_TOKEN_SECRETS: `k2:${'n'.repeat(40)},k1:${'o'.repeat(40)}`,
  GEO_SFU_ADMIN_TOKEN: 'a'.repeat(48),
  GEO_SFU_API_KEY: 'p'.repeat(48),
  REDIS_URL: 'redis://redis.example:6379',
  DATABASE_URL: 'postgres://geo_sfu:pw@postgres.example:5432/geo_sfu',
};
