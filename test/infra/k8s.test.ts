/**
 * infra/k8s, offline: the base and every region overlay are rendered with `kubectl kustomize`
 * (kubectl comes with this machine image; Debian has no kustomize), and every rendered object is
 * validated against the Kubernetes OpenAPI schema of its kind (kubernetes-models 4.x). Then the
 * deployment logic: the overlays set their region, the agents announce the node address, drain
 * within the grace period, probe real routes, and every variable is a real setting that loads.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { DEFAULT_REGIONS } from '../../shared/regions.ts';
import { KNOWN_ENV, SAMPLE_SECRETS, getRoutes, metricNames } from './code-index.ts';
import { INFRA, isRecord, parseYamlDocs, readYamlDocs, requireTool, run, walk } from './helpers.ts';

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

const K8S = join(INFRA, 'k8s');
const REGIONS = DEFAULT_REGIONS.map((r) => r.id);

function render(dir: string): Obj[] {
  const kubectl = requireTool('kubectl', 'kubectl (with its built-in kustomize) is part of this machine image; install it to render infra/k8s');
  return parseYamlDocs(run(kubectl, ['kustomize', dir]), dir) as Obj[];
}

/** kubernetes-models' class for an object: apps/v1 Deployment → kubernetes-models/apps/v1/Deployment. */
async function validateObject(obj: Obj): Promise<void> {
  const group = obj.apiVersion.includes('/') ? obj.apiVersion : `v1`;
  const path = obj.apiVersion.includes('/') ? `kubernetes-models/${group}/${obj.kind}` : `kubernetes-models/v1/${obj.kind}`;
  const mod = (await import(path)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[obj.kind];
  if (!Model) throw new Error(`${path} has no ${obj.kind}`);
  new Model(obj).validate();
}

const rendered = new Map<string, Obj[]>();
const renderedOf = (name: string): Obj[] => {
  let objs = rendered.get(name);
  if (!objs) {
    objs = render(name === 'base' ? join(K8S, 'base') : join(K8S, 'overlays', name));
    rendered.set(name, objs);
  }
  return objs;
};
const find = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  return o;
};

interface Container {
  name: string;
  image: string;
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, string>> }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  lifecycle?: unknown;
}
interface PodTemplate {
  metadata?: { annotations?: Record<string, string> };
  spec: { containers: Container[]; hostNetwork?: boolean; terminationGracePeriodSeconds?: number; dnsPolicy?: string };
}
const template = (o: Obj) => (o.spec as { template: PodTemplate }).template;
const container = (o: Obj, name: string): Container => {
  const c = template(o).spec.containers.find((x) => x.name === name);
  if (!c) throw new Error(`${o.metadata.name} has no container ${name}`);
  return c;
};
const isGeoSfuImage = (c: Container) => /^(.*\/)?geo-sfu(:|@|$)/.test(c.image);

/** The environment a geo-sfu container would see, with secrets and downward-API values filled in. */
function resolvedEnv(objs: Obj[], c: Container, pod: { hostIP: string; name: string }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, (find(objs, 'ConfigMap', from.configMapRef.name).data as Record<string, string>) ?? {});
    if (from.secretRef) throw new Error('envFrom secrets are not used: name each secret variable');
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, n: string) => env[n] ?? all);
    else if (e.valueFrom?.secretKeyRef) env[e.name] = SAMPLE_SECRETS[e.name] ?? 'sample-secret-value-0123456789abcdef';
    else if (e.valueFrom?.fieldRef) env[e.name] = e.valueFrom.fieldRef.fieldPath === 'status.hostIP' ? pod.hostIP : pod.name;
    else if (e.valueFrom?.resourceFieldRef) env[e.name] = e.valueFrom.resourceFieldRef.resource === 'limits.cpu' ? '4' : '4096';
    else throw new Error(`${c.name}: ${e.name} has no value`);
  }
  return env;
}

describe('infra/k8s (kustomize base and region overlays)', () => {
  it('has one overlay per default region', () => {
    expect(readdirSync(join(K8S, 'overlays')).sort()).toEqual([...REGIONS].sort());
  });

  it.each(['base', ...REGIONS])('%s renders, and every object is valid against its Kubernetes schema', async (name) => {
    const objs = renderedOf(name);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/geo-sfu-config',
      expect.stringMatching(/^ConfigMap\/geo-sfu-coturn-[a-z0-9]+$/),
      'Deployment/geo-sfu-agent',
      'Deployment/geo-sfu-coturn',
      'Deployment/geo-sfu-router',
      'HorizontalPodAutoscaler/geo-sfu-agent',
      'Namespace/geo-sfu',
      'PodDisruptionBudget/geo-sfu-agent',
      'PodDisruptionBudget/geo-sfu-router',
      'Service/geo-sfu-router',
    ]);
    for (const o of objs) {
      await validateObject(o);
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('geo-sfu');
    }
  });

  it('the schema validation is not vacuous: a wrong type is refused', async () => {
    const agent = structuredClone(find(renderedOf('base'), 'Deployment', 'geo-sfu-agent'));
    (template(agent).spec as Record<string, unknown>).terminationGracePeriodSeconds = 'long';
    await expect(validateObject(agent)).rejects.toThrow(/terminationGracePeriodSeconds/);
  });

  it('the Secret example and the addon ConfigMap are valid objects too', async () => {
    for (const file of ['infra/k8s/base/secrets.example.yaml', 'infra/k8s/addons/prometheus-adapter-rules.yaml']) {
      for (const o of readYamlDocs(file) as Obj[]) await validateObject(o);
    }
  });

  it.each(REGIONS)('overlay %s sets the agent region and the HPA region, and nothing else of the base changes meaning', (region) => {
    const objs = renderedOf(region);
    const agent = find(objs, 'Deployment', 'geo-sfu-agent');
    const env = container(agent, 'agent').env ?? [];
    expect(env.filter((e) => e.name === 'GEO_SFU_AGENT_REGION')).toEqual([{ name: 'GEO_SFU_AGENT_REGION', value: region }]);
    const hpa = find(objs, 'HorizontalPodAutoscaler', 'geo-sfu-agent');
    expect(hpa.spec).toMatchObject({
      scaleTargetRef: { kind: 'Deployment', name: 'geo-sfu-agent' },
      metrics: [{ type: 'External', external: { metric: { name: 'geo_sfu_region_stress_ratio', selector: { matchLabels: { region } } } } }],
    });
    // The HPA's metric is one the router registers, and the adapter rule serves exactly it.
    expect(metricNames().has('geo_sfu_region_stress_ratio')).toBe(true);
    expect(JSON.stringify(readYamlDocs('infra/k8s/addons/prometheus-adapter-rules.yaml'))).toContain('as: \\"geo_sfu_region_stress_ratio\\"');
    for (const o of objs) expect((o.metadata as { labels?: Record<string, string> }).labels?.['geo-sfu/region'], `${o.kind}/${o.metadata.name}`).toBe(region);
    expect(JSON.stringify(objs)).not.toContain('REPLACED-BY-OVERLAY');
  });

  it('agents: host network, node address from the downward API, probes on /readyz and /healthz, drain fits the grace period', () => {
    const agent = find(renderedOf('us-west'), 'Deployment', 'geo-sfu-agent');
    const pod = template(agent).spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    const c = container(agent, 'agent');
    const hostEnv = c.env?.find((e) => e.name === 'GEO_SFU_AGENT_HOST');
    expect(hostEnv?.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.hostIP' } });
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    // SIGTERM drains; no hook needed, and none that could shorten the drain.
    expect(c.lifecycle).toBeUndefined();
    const env = resolvedEnv(renderedOf('us-west'), c, { hostIP: '198.51.100.7', name: 'geo-sfu-agent-abc' });
    const config = loadConfig(env);
    expect(config.agentHost).toBe('198.51.100.7');
    expect(config.agentPublicUrl).toBe(`http://198.51.100.7:${config.agentPort}`);
    expect(c.readinessProbe?.httpGet?.port).toBe(config.agentPort);
    const graceS = pod.terminationGracePeriodSeconds ?? 30;
    expect(graceS, 'terminationGracePeriodSeconds ≥ drain deadline + 30 s margin').toBeGreaterThanOrEqual(config.drainDeadlineMs / 1000 + 30);
    expect(template(agent).metadata?.annotations?.['prometheus.io/port']).toBe(String(config.agentPort));
  });

  it.each(REGIONS)('%s: every geo-sfu container variable is a setting of shared/config/spec.ts and loads in production mode', (region) => {
    const objs = renderedOf(region);
    for (const name of ['geo-sfu-router', 'geo-sfu-agent']) {
      const d = find(objs, 'Deployment', name);
      for (const c of template(d).spec.containers.filter(isGeoSfuImage)) {
        const env = resolvedEnv(objs, c, { hostIP: '198.51.100.7', name: `${name}-abc` });
        for (const key of Object.keys(env)) expect(KNOWN_ENV.has(key), `${name}/${c.name}: ${key} is not in CONFIG_SPEC`).toBe(true);
        const config = loadConfig(env);
        expect(config.production).toBe(true);
        if (name === 'geo-sfu-agent') expect(config.agentRegion).toBe(region);
      }
    }
    // Any GEO_SFU_* name anywhere (other containers, args, annotations) must be real too.
    for (const m of JSON.stringify(objs).matchAll(/\bGEO_SFU_[A-Z0-9_]+\b/g)) expect(KNOWN_ENV.has(m[0]), m[0]).toBe(true);
  });

  it('probe paths used by Kubernetes exist as routes of the process they probe', () => {
    const routes = { 'geo-sfu-router': getRoutes('router'), 'geo-sfu-agent': getRoutes('region-agent') };
    const objs = renderedOf('base');
    let checked = 0;
    for (const [name, served] of Object.entries(routes)) {
      const d = find(objs, 'Deployment', name);
      walk(d, (o) => {
        if (isRecord(o.httpGet) && typeof o.httpGet.path === 'string') {
          expect(served.has(o.httpGet.path), `${name} probes ${o.httpGet.path}, which it does not serve`).toBe(true);
          checked++;
        }
      });
      expect(served.has(template(d).metadata?.annotations?.['prometheus.io/path'] ?? '')).toBe(true);
    }
    expect(checked).toBe(4);
  });

  it('every secretKeyRef names a key of the geo-sfu-secrets example, and the base applies no Secret', () => {
    const example = (readYamlDocs('infra/k8s/base/secrets.example.yaml') as Obj[])[0] as Obj & { stringData: Record<string, string> };
    const objs = renderedOf('base');
    expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
    let refs = 0;
    walk(objs, (o) => {
      if (isRecord(o.secretKeyRef)) {
        refs++;
        expect(o.secretKeyRef.name).toBe(example.metadata.name);
        expect(Object.keys(example.stringData)).toContain(o.secretKeyRef.key);
      }
    });
    expect(refs).toBeGreaterThanOrEqual(10);
    // The secrets the brief lists are all there: cluster, join tokens, admin, API key, TURN.
    for (const key of ['cluster-secret', 'token-secrets', 'admin-token', 'api-key', 'turn-static-auth-secret']) expect(Object.keys(example.stringData)).toContain(key);
  });

  it('router: Service on the http port, a PodDisruptionBudget, and probes on /readyz and /healthz', () => {
    const objs = renderedOf('base');
    const router = find(objs, 'Deployment', 'geo-sfu-router');
    const labels = (router.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    expect((find(objs, 'Service', 'geo-sfu-router').spec as { selector: unknown }).selector).toEqual(labels);
    expect((find(objs, 'PodDisruptionBudget', 'geo-sfu-router').spec as { selector: unknown }).selector).toEqual({ matchLabels: labels });
    const c = container(router, 'router');
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect((router.spec as { replicas: number }).replicas).toBeGreaterThanOrEqual(2);
  });

  it('coturn runs the shipped configuration (the ConfigMap copy is identical) with the secret from geo-sfu-secrets', () => {
    expect(readFileSync(join(K8S, 'base', 'turnserver.conf'), 'utf8')).toBe(readFileSync(join(INFRA, 'coturn', 'turnserver.conf'), 'utf8'));
    const objs = renderedOf('base');
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('geo-sfu-coturn-')) as Obj & { data: Record<string, string> };
    expect(cm.data['turnserver.conf']).toBe(readFileSync(join(INFRA, 'coturn', 'turnserver.conf'), 'utf8'));
    const coturn = find(objs, 'Deployment', 'geo-sfu-coturn');
    const c = container(coturn, 'coturn') as Container & { args: string[] };
    expect(c.args).toContain('--static-auth-secret=$(TURN_STATIC_AUTH_SECRET)');
    expect(c.args.join(' ')).not.toContain('allow-loopback-peers');
    expect(JSON.stringify(template(coturn).spec)).toContain(cm.metadata.name);
  });
});
