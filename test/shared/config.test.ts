import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_SPEC, loadConfig } from '../../shared/config/index.ts';
import { configTableMarkdown } from '../../shared/config/table.ts';
import { ConfigError } from '../../shared/errors.ts';

describe('configuration', () => {
  it('defaults load and give the four default regions', () => {
    const config = loadConfig({});
    expect(config.regions.map((r) => r.id)).toEqual(['us-west', 'us-east', 'eu-west', 'apac']);
    expect(config.routerPort).toBe(8080);
    expect([config.maxCpu, config.maxMemory, config.maxParticipantsPerNode]).toEqual([0.7, 0.8, 100]);
  });

  it('reads overrides from GEO_SFU_* variables', () => {
    const config = loadConfig({ GEO_SFU_ROUTER_PORT: '9000', GEO_SFU_MARGIN_MS: '20', GEO_SFU_PRODUCTION: 'false', GEO_SFU_TOKEN_SECRETS: `a:${'x'.repeat(32)},b:${'y'.repeat(32)}` });
    expect(config.routerPort).toBe(9000);
    expect(config.marginMs).toBe(20);
    expect(config.tokenKeys.map((k) => k.kid)).toEqual(['a', 'b']);
  });

  it('refuses bad values, naming every variable at fault', () => {
    let error: unknown;
    try {
      loadConfig({
        GEO_SFU_ROUTER_PORT: 'eighty',
        GEO_SFU_MAX_CPU: '7',
        GEO_SFU_LOG_LEVEL: 'loud',
        GEO_SFU_REGIONS: '[{"id":"X","displayName":"","lat":100,"lon":0}]',
        GEO_SFU_ROUTR_PORT: '1',
        GEO_SFU_DEAD_AFTER_MS: '1000',
        GEO_SFU_TOKEN_SECRETS: 'k:short',
        GEO_SFU_P2P_LEASE_MS: '2000',
        GEO_SFU_P2P_CHECK_INTERVAL_MS: '1000',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).message;
    for (const name of ['GEO_SFU_ROUTER_PORT', 'GEO_SFU_MAX_CPU', 'GEO_SFU_LOG_LEVEL', 'GEO_SFU_REGIONS: regions[0].id', 'regions[0].lat', 'GEO_SFU_ROUTR_PORT: unknown setting', 'GEO_SFU_DEAD_AFTER_MS must be greater', 'GEO_SFU_TOKEN_SECRETS', 'GEO_SFU_P2P_LEASE_MS must be at least 3']) {
      expect(text).toContain(name);
    }
  });

  it('production mode refuses to start without real secrets', () => {
    expect(() => loadConfig({ GEO_SFU_PRODUCTION: 'true' })).toThrow(/GEO_SFU_CLUSTER_SECRET is required in production mode/);
  });

  it('an agent region must be in the catalog', () => {
    expect(() => loadConfig({ GEO_SFU_AGENT_REGION: 'mars' })).toThrow(/not in the region catalog/);
  });

  it('the configuration page (docs/configuration.md) matches the config module', () => {
    const page = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(page).toContain(configTableMarkdown());
    for (const spec of Object.values(CONFIG_SPEC)) expect(page).toContain(`\`${spec.env}\``);
  });
});
