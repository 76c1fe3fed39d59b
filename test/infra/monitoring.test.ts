/**
 * Prometheus and Grafana, offline: `promtool check config`, `promtool check rules` and the rule
 * unit tests (`promtool test rules`: the guide's thresholds fire just above the line, not below),
 * then every metric the alerts and the dashboard use is one the code registers, and the
 * dashboard's datasource is the provisioned one.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseMetric, getRoutes, metricNames, metricsInPromql } from './code-index.ts';
import { INFRA, isRecord, readText, readYaml, requireTool, run, walk } from './helpers.ts';

const PROMTOOL_HOW = "run 'npm run setup:test' (infra/setup-test.sh installs Debian's prometheus package, which has promtool, when it is missing)";
const promtool = () => requireTool('promtool', PROMTOOL_HOW);
const PROM_DIR = join(INFRA, 'prometheus');

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string> }
const rules = (readYaml('infra/prometheus/alerts.yml') as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

const DASHBOARDS = readdirSync(join(INFRA, 'grafana', 'dashboards')).filter((f) => f.endsWith('.json'));
interface Panel { type: string; title: string; datasource?: { type: string; uid: string }; targets?: { expr: string; datasource?: { uid: string } }[]; panels?: Panel[] }
const dashboards = DASHBOARDS.map((f) => ({ file: f, json: JSON.parse(readText(`infra/grafana/dashboards/${f}`)) as { uid: string; title: string; panels: Panel[] } }));

const known = metricNames();
function expectKnownMetrics(expr: string, where: string): void {
  for (const series of metricsInPromql(expr)) {
    expect(known.has(baseMetric(series, known)), `${where}: ${series} is not registered in router/ or region-agent/ (name: '${series}')`).toBe(true);
  }
}

describe('Prometheus configuration and alert rules', () => {
  it('promtool check config (with the rule file it loads)', () => {
    const out = run(promtool(), ['check', 'config', 'prometheus.yml'], { cwd: PROM_DIR });
    expect(out).toMatch(/SUCCESS: prometheus\.yml is valid/);
    expect(out).toMatch(/SUCCESS: 1 rule files found/);
  });

  it('promtool check rules', () => {
    expect(run(promtool(), ['check', 'rules', 'alerts.yml'], { cwd: PROM_DIR })).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  it('promtool test rules: loss > 5 %, RTT > 200 ms and stress ≥ 0.8 fire; values just under stay quiet', () => {
    expect(run(promtool(), ['test', 'rules', 'alerts.test.yml'], { cwd: PROM_DIR })).toMatch(/SUCCESS/);
  });

  it("uses the scaling guide's thresholds", () => {
    const expr = (name: string) => rules.find((r) => r.alert === name)?.expr;
    expect(expr('GeoSfuProbeLossHigh')).toBe('geo_sfu_probe_loss_ratio > 0.05');
    expect(expr('GeoSfuPeerLossHigh')).toBe('geo_sfu_agent_peer_loss > 0.05');
    expect(expr('GeoSfuProbeRttHigh')).toBe('geo_sfu_probe_rtt_milliseconds > 200');
    expect(expr('GeoSfuNodeStressHigh')).toBe('geo_sfu_node_stress_ratio >= 0.8');
    for (const r of rules) expect(['info', 'warning', 'critical'], r.alert).toContain(r.labels?.severity);
  });

  it('every metric an alert uses is registered by the code', () => {
    for (const r of rules) expectKnownMetrics(r.expr, `alert ${r.alert ?? r.record}`);
    expect(known.size).toBeGreaterThan(15);
  });

  it('scrapes the router and every agent over HTTPS on a path they serve', () => {
    const prom = readYaml('infra/prometheus/prometheus.yml') as { scrape_configs: { job_name: string; metrics_path?: string; scheme?: string; static_configs: { targets: string[] }[] }[] };
    const job = (name: string) => prom.scrape_configs.find((j) => j.job_name === name);
    expect(job('geo-sfu-router')?.static_configs.flatMap((s) => s.targets)).toEqual(['router:8080']);
    const compose = readText('infra/docker-compose.yml');
    const agentTargets = job('geo-sfu-agent')?.static_configs.flatMap((s) => s.targets) ?? [];
    expect(agentTargets).toHaveLength(4);
    for (const t of agentTargets) {
      const [host, port] = t.split(':');
      expect(compose, `${t} is a compose service on that port`).toMatch(new RegExp(`\\n  ${host}:[\\s\\S]*?GEO_SFU_AGENT_PORT: "${port}"`));
    }
    // The compose router and agents serve HTTPS only (GEO_SFU_TLS_CERT_FILE): so must the scrapes.
    expect(compose).toMatch(/GEO_SFU_TLS_CERT_FILE: \S/);
    expect(job('geo-sfu-router')?.scheme).toBe('https');
    expect(job('geo-sfu-agent')?.scheme).toBe('https');
    expect(getRoutes('router').has(job('geo-sfu-router')?.metrics_path ?? '')).toBe(true);
    expect(getRoutes('region-agent').has(job('geo-sfu-agent')?.metrics_path ?? '')).toBe(true);
  });
});

describe('Grafana provisioning and dashboard', () => {
  const ds = readYaml('infra/grafana/provisioning/datasources/prometheus.yml') as { datasources: { uid: string; type: string; url: string }[] };
  const provider = readYaml('infra/grafana/provisioning/dashboards/geo-sfu.yml') as { providers: { options: { path: string } }[] };

  it('the datasource points at the compose Prometheus, and the dashboard folder is the one compose mounts', () => {
    expect(ds.datasources).toEqual([expect.objectContaining({ type: 'prometheus', uid: 'geo-sfu-prometheus', url: 'http://prometheus:9090' })]);
    expect(readText('infra/docker-compose.yml')).toContain(`./grafana/dashboards:${provider.providers[0]?.options.path}:ro`);
    expect(DASHBOARDS.length).toBeGreaterThan(0);
  });

  it('panels cover regions, the inter-region RTT matrix, rooms, allocations, node stress and the session-log buffer', () => {
    for (const { json } of dashboards) {
      const exprs: string[] = [];
      walk(json.panels, (o) => { if (typeof o.expr === 'string') exprs.push(o.expr); });
      const used = new Set(exprs.flatMap(metricsInPromql));
      for (const m of ['geo_sfu_nodes', 'geo_sfu_inter_region_rtt_milliseconds', 'geo_sfu_agent_rooms', 'geo_sfu_allocations_total', 'geo_sfu_node_stress_ratio', 'geo_sfu_session_log_buffer_depth']) {
        expect(used.has(m), `${m} on the dashboard`).toBe(true);
      }
      const matrix = JSON.stringify(json.panels.find((p) => /inter-region rtt matrix/i.test(p.title)));
      expect(matrix).toContain('"groupingToMatrix"');
    }
  });

  it('every dashboard query uses a registered metric and the provisioned datasource', () => {
    for (const { file, json } of dashboards) {
      const ids = new Set<number>();
      walk(json.panels, (o, path) => {
        if (typeof o.expr === 'string') expectKnownMetrics(o.expr, `${file} ${path}`);
        if (isRecord(o.datasource)) expect(o.datasource.uid, `${file} ${path}`).toBe(ds.datasources[0]?.uid);
        if (typeof o.id === 'number' && typeof o.type === 'string') {
          expect(ids.has(o.id), `${file}: duplicate panel id ${o.id}`).toBe(false);
          ids.add(o.id);
        }
      });
    }
  });

  it('the metric scan is not vacuous: an unknown metric is reported', () => {
    expect(metricsInPromql('sum by (region) (rate(geo_sfu_made_up_total{x="geo_sfu_label"}[5m]))')).toEqual(['geo_sfu_made_up_total']);
    expect(known.has('geo_sfu_made_up_total')).toBe(false);
    expect(known.has(baseMetric('geo_sfu_allocation_duration_seconds_bucket', known))).toBe(true);
  });
});
