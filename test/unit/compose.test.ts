import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Service {
  image?: string;
  build?: unknown;
  healthcheck?: { test: unknown };
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  secrets?: string[];
}

const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
};

function hasDockerCompose(): boolean {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('docker-compose.yml', () => {
  it('has the production services, each with a healthcheck', () => {
    for (const name of ['postgres', 'temporal', 'temporal-ui', 'warden-worker', 'warden-api']) {
      expect(compose.services[name], name).toBeDefined();
      expect(compose.services[name]!.healthcheck?.test, `${name} healthcheck`).toBeDefined();
    }
  });

  it('starts Warden only after Postgres and Temporal are healthy', () => {
    for (const name of ['warden-worker', 'warden-api']) {
      expect(compose.services[name]!.depends_on).toMatchObject({
        postgres: { condition: 'service_healthy' },
        temporal: { condition: 'service_healthy' },
      });
    }
  });

  it('gives Temporal Postgres persistence', () => {
    expect(compose.services.temporal!.environment).toMatchObject({ DB: 'postgres12' });
  });

  it('passes secrets as files, never inline', () => {
    const env = compose.services['warden-api']!.environment!;
    expect(env.WARDEN_ADMIN_TOKEN).toBeUndefined();
    expect(env.WARDEN_ADMIN_TOKEN_FILE).toBe('/run/secrets/admin-token');
    for (const secret of compose.services['warden-api']!.secrets!) {
      expect(compose.secrets[secret]?.file, secret).toMatch(/^\.\/deploy\/secrets\//);
    }
  });

  // CI installs Debian's docker-compose (1.29), which validates the file without an engine
  it.runIf(hasDockerCompose() || process.env.CI === 'true')('is accepted by `docker-compose config`', () => {
    expect(() => execFileSync('docker-compose', ['config', '-q'], { stdio: 'pipe' })).not.toThrow();
  });
});
