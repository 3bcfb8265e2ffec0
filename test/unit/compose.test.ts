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
  volumes?: string[];
  command?: string[];
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

  it('runs the whole observability stack and a Postgres replica, each with a healthcheck', () => {
    for (const name of ['postgres-replica', 'prometheus', 'alertmanager', 'grafana']) {
      expect(compose.services[name], name).toBeDefined();
      expect(compose.services[name]!.healthcheck?.test, `${name} healthcheck`).toBeDefined();
    }
    expect(compose.services.jaeger?.environment).toMatchObject({ COLLECTOR_OTLP_ENABLED: 'true' });
  });

  it('streams the replica from the primary through a replication role whose password is a file', () => {
    expect(compose.services['postgres-replica']!.depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
    });
    expect(compose.services.postgres!.command!.join(' ')).toContain('wal_level=replica');
    const entrypoint = readFileSync('deploy/postgres/replica-entrypoint.sh', 'utf8');
    expect(entrypoint).toMatch(/pg_basebackup .*-R/);
    expect(readFileSync('deploy/postgres/primary-init.sh', 'utf8')).toContain('WITH REPLICATION');
    expect(compose.services['postgres-replica']!.secrets).toContain('replication-password');
  });

  it('loads the alert rules into Prometheus and routes Alertmanager to Warden with a token file', () => {
    expect(compose.services.prometheus!.volumes).toContain(
      './deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro',
    );
    expect(compose.services.alertmanager!.secrets).toContain('alertmanager-token');
    expect(compose.services['warden-api']!.environment!.WARDEN_ALERTMANAGER_TOKEN_FILE).toBe(
      '/run/secrets/alertmanager-token',
    );
    expect(readFileSync('deploy/alertmanager/alertmanager.yml', 'utf8')).toContain(
      'http://warden-api:9090/alertmanager/webhook',
    );
  });

  it('wires the Temporal UI to the codec server and exports traces over OTLP', () => {
    const ui = compose.services['temporal-ui']!.environment!;
    expect(ui.TEMPORAL_CODEC_ENDPOINT).toMatch(/:9090\/codec\}?$/);
    const api = compose.services['warden-api']!.environment!;
    expect(api.WARDEN_CODEC_TOKEN_FILE).toBe('/run/secrets/codec-token');
    expect(api.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
  });

  it('generates every secret file the compose file mounts', () => {
    const script = readFileSync('deploy/gen-secrets.sh', 'utf8');
    const generated = new Set([...script.matchAll(/^gen (\S+)/gm)].map((m) => m[1]));
    generated.add('database-url');
    for (const [name, secret] of Object.entries(compose.secrets)) {
      expect(generated, name).toContain(secret.file.replace('./deploy/secrets/', ''));
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
