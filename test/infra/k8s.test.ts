/**
 * infra/k8s, offline: the base and every region overlay are rendered with `kubectl kustomize`
 * (kubectl comes with this machine image; Debian has no kustomize), and every rendered object is
 * validated against the Kubernetes OpenAPI schema of its kind (kubernetes-models 4.x; cert-manager
 * objects by their fields). Then the deployment logic: the overlays set their region, the agents
 * announce the node address, drain within the grace period, probe real routes, and every variable
 * is a real setting that loads; media ports sized and clear of coturn's on the shared host
 * network, TURN credentials for coturn, TLS from cert-manager Secrets, resources everywhere.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { DEFAULT_REGIONS } from '../../shared/regions.ts';
import { KNOWN_ENV, SAMPLE_SECRETS, getRoutes, metricNames } from './code-index.ts';
import { INFRA, type PortRange, isRecord, overlaps, parseYamlDocs, readYamlDocs, requireTool, run, rtcUdpPortsNeeded, walk } from './helpers.ts';

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

const K8S = join(INFRA, 'k8s');
const REGIONS = DEFAULT_REGIONS.map((r) => r.id);

function render(dir: string): Obj[] {
  const kubectl = requireTool('kubectl', 'kubectl (with its built-in kustomize) is part of this machine image; install it to render infra/k8s');
  return parseYamlDocs(run(kubectl, ['kustomize', dir]), dir) as Obj[];
}

/** cert-manager's CRDs are not in kubernetes-models: the fields geo-sfu relies on, checked by hand. */
function validateCertManager(obj: Obj): void {
  const spec = (obj as { spec?: Record<string, unknown> }).spec ?? {};
  if (obj.kind === 'Certificate') {
    if (typeof spec.secretName !== 'string' || !Array.isArray(spec.dnsNames) || spec.dnsNames.length === 0) throw new Error(`${obj.metadata.name}: secretName and dnsNames are required`);
    const issuer = spec.issuerRef as { kind?: string; name?: string } | undefined;
    if (!issuer?.name || !['Issuer', 'ClusterIssuer'].includes(issuer.kind ?? '')) throw new Error(`${obj.metadata.name}: issuerRef needs a name and kind Issuer or ClusterIssuer`);
  } else if (obj.kind === 'ClusterIssuer') {
    const acme = spec.acme as { server?: string; privateKeySecretRef?: { name?: string }; solvers?: unknown[] } | undefined;
    if (!acme?.server?.startsWith('https://') || !acme.privateKeySecretRef?.name || !acme.solvers?.length) throw new Error(`${obj.metadata.name}: acme server, privateKeySecretRef and solvers are required`);
  } else throw new Error(`unexpected cert-manager kind ${obj.kind}`);
}

/** kubernetes-models' class for an object: apps/v1 Deployment → kubernetes-models/apps/v1/Deployment. */
async function validateObject(obj: Obj): Promise<void> {
  if (obj.apiVersion === 'cert-manager.io/v1') {
    validateCertManager(obj);
    return;
  }
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
/** The router is a StatefulSet (its degraded journal on a volume of its own), the agents a Deployment. */
const WORKLOAD = { 'geo-sfu-router': 'StatefulSet', 'geo-sfu-agent': 'Deployment' } as const;
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
  readinessProbe?: { httpGet?: { path: string; port: number | string; scheme?: string } };
  livenessProbe?: { httpGet?: { path: string; port: number | string; scheme?: string } };
  lifecycle?: unknown;
  args?: string[];
  ports?: { containerPort: number; hostPort?: number; protocol?: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
}
interface PodTemplate {
  metadata?: { annotations?: Record<string, string> };
  spec: { containers: Container[]; hostNetwork?: boolean; terminationGracePeriodSeconds?: number; dnsPolicy?: string; volumes?: { name: string; secret?: { secretName: string; optional?: boolean } }[] };
}
const template = (o: Obj) => (o.spec as { template: PodTemplate }).template;
const container = (o: Obj, name: string): Container => {
  const c = template(o).spec.containers.find((x) => x.name === name);
  if (!c) throw new Error(`${o.metadata.name} has no container ${name}`);
  return c;
};
const isGeoSfuImage = (c: Container) => /^(.*\/)?geo-sfu(:|@|$)/.test(c.image);

/** A CPU quantity ("4", "500m") as the downward API gives it with divisor 1: whole cores, rounded up. */
const cpuCores = (q: string) => Math.ceil(q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q));
/** A memory quantity ("4Gi", "512Mi") in MiB. */
function memoryMiB(q: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`unexpected memory quantity ${q}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

interface Pod { hostIP: string; name: string; nodeName: string }
const POD: Pod = { hostIP: '198.51.100.7', name: 'geo-sfu-agent-abc', nodeName: 'node-a' };

/** The environment a container would see, with secrets, downward-API values and $(VAR) references filled in. */
function resolvedEnv(objs: Obj[], c: Container, pod: Pod = POD): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, (find(objs, 'ConfigMap', from.configMapRef.name).data as Record<string, string>) ?? {});
    if (from.secretRef) throw new Error('envFrom secrets are not used: name each secret variable');
  }
  const fields: Record<string, string> = { 'status.hostIP': pod.hostIP, 'metadata.name': pod.name, 'spec.nodeName': pod.nodeName };
  for (const e of c.env ?? []) {
    const ref = e.valueFrom;
    if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, n: string) => env[n] ?? all);
    else if (ref?.secretKeyRef) env[e.name] = SAMPLE_SECRETS[e.name] ?? 'sample-secret-value-0123456789abcdef';
    else if (ref?.fieldRef) {
      const value = fields[ref.fieldRef.fieldPath ?? ''];
      if (value === undefined) throw new Error(`${c.name}: ${e.name} reads ${ref.fieldRef.fieldPath}, not modelled here`);
      env[e.name] = value;
    } else if (ref?.resourceFieldRef) {
      const { resource, containerName } = ref.resourceFieldRef;
      const limits = containerName === c.name ? c.resources?.limits : undefined;
      if (resource === 'limits.cpu' && limits?.cpu) env[e.name] = String(cpuCores(limits.cpu));
      else if (resource === 'limits.memory' && limits?.memory) env[e.name] = String(memoryMiB(limits.memory));
      else throw new Error(`${c.name}: ${e.name} reads ${resource ?? '?'} of ${containerName ?? '?'}, which has no such limit`);
    } else throw new Error(`${c.name}: ${e.name} has no value`);
  }
  return env;
}

/**
 * The settings a geo-sfu container gets: every GEO_SFU_* name (and REDIS_URL, DATABASE_URL) must
 * be a setting; another name is allowed only as a helper another variable spells in as $(NAME).
 */
function settingsOf(objs: Obj[], c: Container, pod: Pod = POD): Record<string, string> {
  const env = resolvedEnv(objs, c, pod);
  const spelled = JSON.stringify((c.env ?? []).map((e) => e.value ?? ''));
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (KNOWN_ENV.has(key)) settings[key] = value;
    else {
      expect(key.startsWith('GEO_SFU_'), `${c.name}: ${key} is not in CONFIG_SPEC`).toBe(false);
      expect(spelled, `${c.name}: ${key} is neither a setting nor used by one`).toContain(`$(${key})`);
    }
  }
  return settings;
}

/** coturn's relay ports: turnserver.conf's min-port..max-port, unless its args override them. */
function coturnRelayRange(c: Container): PortRange {
  const conf = readFileSync(join(INFRA, 'coturn', 'turnserver.conf'), 'utf8');
  const setting = (name: string) => {
    const arg = (c.args ?? []).find((a) => a.startsWith(`--${name}=`));
    const line = new RegExp(`^${name}=(\\d+)$`, 'm').exec(conf);
    return Number(arg?.split('=')[1] ?? line?.[1]);
  };
  return [setting('min-port'), setting('max-port')];
}

const ADDON_ISSUER = (readYamlDocs('infra/k8s/addons/cert-manager.yaml') as Obj[]).find((o) => o.kind === 'ClusterIssuer');

describe('infra/k8s (kustomize base and region overlays)', () => {
  it('has one overlay per default region', () => {
    expect(readdirSync(join(K8S, 'overlays')).sort()).toEqual([...REGIONS].sort());
  });

  it.each(['base', ...REGIONS])('%s renders, and every object is valid against its Kubernetes schema', async (name) => {
    const objs = renderedOf(name);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      // Each region's overlay adds its agents' certificate.
      ...(name === 'base' ? [] : ['Certificate/geo-sfu-agent-tls']),
      'ConfigMap/geo-sfu-config',
      expect.stringMatching(/^ConfigMap\/geo-sfu-coturn-[a-z0-9]+$/),
      'Deployment/geo-sfu-agent',
      'Deployment/geo-sfu-coturn',
      'HorizontalPodAutoscaler/geo-sfu-agent',
      'Ingress/geo-sfu-router',
      'Namespace/geo-sfu',
      'PodDisruptionBudget/geo-sfu-agent',
      'PodDisruptionBudget/geo-sfu-router',
      'Service/geo-sfu-router',
      'StatefulSet/geo-sfu-router',
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

  it('the Secret example and the addons (prometheus-adapter rules, cert-manager issuer) are valid objects too', async () => {
    for (const file of ['infra/k8s/base/secrets.example.yaml', 'infra/k8s/addons/prometheus-adapter-rules.yaml', 'infra/k8s/addons/cert-manager.yaml']) {
      for (const o of readYamlDocs(file) as Obj[]) await validateObject(o);
    }
  });

  it('the overlays are copies of one another with the region name replaced, so a new region is a copied folder', () => {
    const normalized = (region: string) => {
      const dir = join(K8S, 'overlays', region);
      return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), 'utf8').replaceAll(region, '<region>')]));
    };
    const [first = '', ...rest] = REGIONS;
    expect(Object.keys(normalized(first))).toEqual(['agent-certificate.yaml', 'kustomization.yaml']);
    for (const region of rest) expect(normalized(region), region).toEqual(normalized(first));
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
    const config = loadConfig(settingsOf(renderedOf('us-west'), c));
    expect(config.agentHost).toBe('198.51.100.7');
    expect(config.agentPublicUrl).toBe(`https://node-a.us-west.agents.geo-sfu.example.com:${config.agentPort}`);
    expect(c.readinessProbe?.httpGet?.port).toBe(config.agentPort);
    const graceS = pod.terminationGracePeriodSeconds ?? 30;
    expect(graceS, 'terminationGracePeriodSeconds ≥ drain deadline + 30 s margin').toBeGreaterThanOrEqual(config.drainDeadlineMs / 1000 + 30);
    expect(template(agent).metadata?.annotations?.['prometheus.io/port']).toBe(String(config.agentPort));
  });

  it.each(REGIONS)('%s: every geo-sfu container variable is a setting of shared/config/spec.ts and loads in production mode', (region) => {
    const objs = renderedOf(region);
    for (const name of ['geo-sfu-router', 'geo-sfu-agent']) {
      const d = find(objs, WORKLOAD[name as keyof typeof WORKLOAD], name);
      for (const c of template(d).spec.containers.filter(isGeoSfuImage)) {
        const config = loadConfig(settingsOf(objs, c));
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
      const d = find(objs, WORKLOAD[name as keyof typeof WORKLOAD], name);
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
    const router = find(objs, 'StatefulSet', 'geo-sfu-router');
    const labels = (router.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    expect((find(objs, 'Service', 'geo-sfu-router').spec as { selector: unknown }).selector).toEqual(labels);
    expect((find(objs, 'PodDisruptionBudget', 'geo-sfu-router').spec as { selector: unknown }).selector).toEqual({ matchLabels: labels });
    const c = container(router, 'router');
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect((router.spec as { replicas: number }).replicas).toBeGreaterThanOrEqual(2);
    // The degraded journal on the replica's own volume, where GEO_SFU_JOURNAL_DIR points.
    const spec = router.spec as { volumeClaimTemplates: Array<{ metadata: { name: string } }> };
    const mount = (c as Container & { volumeMounts: Array<{ name: string; mountPath: string }> }).volumeMounts.find((m) => m.name === 'journal');
    expect(spec.volumeClaimTemplates.map((t) => t.metadata.name)).toContain('journal');
    expect(mount).toBeDefined();
    expect(loadConfig(settingsOf(objs, c)).journalDir.startsWith(`${mount!.mountPath}/`)).toBe(true);
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
  it.each(REGIONS)("%s: agents listen for media on 0.0.0.0, announce the node's address, and take a port range sized for workers and pipes, clear of coturn's relay range and every host port on the shared host network", (region) => {
    const objs = renderedOf(region);
    const agent = container(find(objs, 'Deployment', 'geo-sfu-agent'), 'agent');
    const config = loadConfig(settingsOf(objs, agent));
    expect(config.rtcListenIp).toBe('0.0.0.0');
    expect(config.rtcAnnouncedAddress, 'announced whenever the listen address is 0.0.0.0').toBe(POD.hostIP);
    const range: PortRange = [config.rtcMinPort, config.rtcMaxPort];
    // GEO_SFU_SFU_WORKERS comes from the CPU limit, so the range is sized for what runs.
    expect(config.sfuWorkers).toBe(cpuCores(agent.resources?.limits?.cpu ?? '0'));
    const needed = rtcUdpPortsNeeded({ workers: config.sfuWorkers, maxParticipantsPerNode: config.maxParticipantsPerNode, regions: config.regions.length });
    expect(range[1] - range[0] + 1, `${needed} ports at worst`).toBeGreaterThanOrEqual(needed);
    const coturnDeployment = find(objs, 'Deployment', 'geo-sfu-coturn');
    expect(template(coturnDeployment).spec.hostNetwork, 'coturn shares the node network with the agents').toBe(true);
    const coturn = container(coturnDeployment, 'coturn');
    const relay = coturnRelayRange(coturn);
    expect(overlaps(range, relay), `agents ${range.join('-')} and coturn relay ${relay.join('-')}`).toBe(false);
    const hostPorts = [agent, coturn].flatMap((c) => (c.ports ?? []).map((p) => p.hostPort ?? p.containerPort));
    for (const port of hostPorts) {
      expect(overlaps(range, [port, port]), `host port ${port} inside the agents' range`).toBe(false);
      expect(overlaps(relay, [port, port]), `host port ${port} inside coturn's relay range`).toBe(false);
    }
    if (region === REGIONS[0]) console.log(`k8s node ports: agent RTC ${range.join('-')} (${needed} needed at worst), coturn relay ${relay.join('-')}, host ports ${hostPorts.join(', ')}`);
  });

  it("routers: coturn's secret, and TURN URLs for every region on coturn's listening port for each transport", () => {
    const objs = renderedOf('base');
    const router = container(find(objs, 'StatefulSet', 'geo-sfu-router'), 'router');
    const coturn = container(find(objs, 'Deployment', 'geo-sfu-coturn'), 'coturn');
    const secretRef = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
    expect(coturn.args).toContain('--static-auth-secret=$(TURN_STATIC_AUTH_SECRET)');
    expect(secretRef(router, 'GEO_SFU_TURN_SECRET')).toEqual(secretRef(coturn, 'TURN_STATIC_AUTH_SECRET'));
    const config = loadConfig(settingsOf(objs, router));
    expect(config.turnSecret).not.toBe('');
    const listening = Number(/^listening-port=(\d+)$/m.exec(readFileSync(join(INFRA, 'coturn', 'turnserver.conf'), 'utf8'))?.[1]);
    expect(Object.keys(config.turnUrls).sort()).toEqual([...REGIONS].sort());
    for (const [region, urls] of Object.entries(config.turnUrls)) {
      expect(new Set(urls.map((u) => u.split('transport=')[1])), region).toEqual(new Set(['udp', 'tcp']));
      for (const url of urls) {
        const m = /^turn:([a-z0-9.-]+):(\d+)\?transport=(udp|tcp)$/.exec(url);
        expect(m, url).not.toBeNull();
        const [, host = '', port, transport = ''] = m ?? [];
        expect(host.split('.'), `${url} names the coturn of ${region}`).toContain(region);
        expect(Number(port), url).toBe(listening);
        expect(coturn.ports?.some((p) => p.hostPort === listening && p.protocol === transport.toUpperCase()), `coturn opens ${listening}/${transport}`).toBe(true);
      }
    }
  });

  it.each(REGIONS)('%s: agents serve HTTPS/WSS from the Secret their Certificate fills, mounted where GEO_SFU_TLS_* point; probes and scrapes use HTTPS', (region) => {
    const objs = renderedOf(region);
    const deployment = find(objs, 'Deployment', 'geo-sfu-agent');
    const agent = container(deployment, 'agent');
    const config = loadConfig(settingsOf(objs, agent));
    expect(config.tlsCertFile).not.toBe('');
    const volumes = template(deployment).spec.volumes ?? [];
    const secretNames = new Set<string>();
    for (const file of [config.tlsCertFile, config.tlsKeyFile]) {
      const mount = agent.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
      expect(mount, `${file} is in a mounted folder`).toBeDefined();
      expect(mount?.readOnly).toBe(true);
      const secret = volumes.find((v) => v.name === mount?.name)?.secret;
      expect(secret?.optional, 'the agent cannot serve WSS without it').not.toBe(true);
      // A kubernetes.io/tls Secret holds tls.crt and tls.key.
      expect(['tls.crt', 'tls.key']).toContain(file.slice((mount?.mountPath.length ?? 0) + 1));
      secretNames.add(secret?.secretName ?? '');
    }
    expect(secretNames.size).toBe(1);
    const certificate = find(objs, 'Certificate', 'geo-sfu-agent-tls') as Obj & { spec: { secretName: string; dnsNames: string[]; issuerRef: { kind: string; name: string } } };
    expect(certificate.spec.secretName).toBe([...secretNames][0]);
    // The certificate covers the announced host, whatever single-label name the node has.
    const host = new URL(config.agentPublicUrl).hostname;
    expect(new URL(config.agentPublicUrl).protocol).toBe('https:');
    expect(certificate.spec.dnsNames.some((n) => n === host || (n.startsWith('*.') && host.slice(host.indexOf('.')) === n.slice(1)))).toBe(true);
    expect(certificate.spec.issuerRef).toEqual({ kind: 'ClusterIssuer', name: ADDON_ISSUER?.metadata.name });
    expect(agent.readinessProbe?.httpGet?.scheme).toBe('HTTPS');
    expect(agent.livenessProbe?.httpGet?.scheme).toBe('HTTPS');
    expect(template(deployment).metadata?.annotations?.['prometheus.io/scheme']).toBe('https');
  });

  it("the router's Ingress terminates TLS with a cert-manager certificate from the addon's issuer, and forwards to the router Service", () => {
    const objs = renderedOf('base');
    const ingress = find(objs, 'Ingress', 'geo-sfu-router') as Obj & { metadata: { annotations?: Record<string, string> }; spec: { tls: { hosts: string[]; secretName: string }[]; rules: { host: string; http: { paths: { backend: { service: { name: string; port: { name?: string } } } }[] } }[] } };
    expect(ingress.metadata.annotations?.['cert-manager.io/cluster-issuer']).toBe(ADDON_ISSUER?.metadata.name);
    expect(ingress.spec.tls).toHaveLength(1);
    expect(ingress.spec.rules.map((r) => r.host)).toEqual(ingress.spec.tls[0]?.hosts);
    const service = find(objs, 'Service', 'geo-sfu-router') as Obj & { spec: { ports: { name: string }[] } };
    for (const path of ingress.spec.rules.flatMap((r) => r.http.paths)) {
      expect(path.backend.service.name).toBe(service.metadata.name);
      expect(service.spec.ports.map((p) => p.name)).toContain(path.backend.service.port.name);
    }
    // One proxy hop (the ingress controller) in front of the routers.
    const router = container(find(objs, 'StatefulSet', 'geo-sfu-router'), 'router');
    expect(loadConfig(settingsOf(objs, router)).trustProxy).toBe(1);
  });

  it.each(['base', ...REGIONS])('%s: every container of every workload has CPU and memory requests and limits, requests within limits', (name) => {
    let checked = 0;
    for (const o of renderedOf(name).filter((x) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(x.kind))) {
      for (const c of template(o).spec.containers) {
        for (const kind of ['requests', 'limits'] as const) {
          expect(c.resources?.[kind]?.cpu, `${o.metadata.name}/${c.name} ${kind}.cpu`).toBeDefined();
          expect(c.resources?.[kind]?.memory, `${o.metadata.name}/${c.name} ${kind}.memory`).toBeDefined();
        }
        const cpu = (q: string) => (q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q));
        expect(cpu(c.resources?.requests?.cpu ?? '0')).toBeLessThanOrEqual(cpu(c.resources?.limits?.cpu ?? '0'));
        expect(memoryMiB(c.resources?.requests?.memory ?? '0Mi')).toBeLessThanOrEqual(memoryMiB(c.resources?.limits?.memory ?? '0Mi'));
        checked++;
      }
    }
    expect(checked).toBe(3);
  });
});
