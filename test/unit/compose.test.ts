import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SHIPPED_TEMPLATES_DIR } from '../../src/auth/messageCatalog';
import { ConfigSchema } from '../../src/config/schema';
import { MIGRATIONS_DIR } from '../../src/db/migrate';
import { parseEndpoints } from '../../src/db/topology';
import { DB_FAILOVER_DEFAULTS } from '../../src/shared/database';

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  entrypoint?: string[];
  healthcheck?: { test: unknown };
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string | number>;
  secrets?: string[];
  volumes?: string[];
  command?: string[];
  ports?: string[];
}

const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
};
const services = compose.services;
const service = (name: string): Service => {
  const found = services[name];
  if (!found) throw new Error(`no service ${name} in docker-compose.yml`);
  return found;
};
const env = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(service(name).environment ?? {}).map(([k, v]) => [k, String(v)]));
const dockerfile = readFileSync('Dockerfile', 'utf8');

function hasDockerCompose(): boolean {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A service's published ports as [host address, host port, container port]; no address = every interface. */
function published(name: string): Array<{ address: string; host: string; container: string }> {
  return (service(name).ports ?? []).map((entry) => {
    const parts = String(entry)
      .replace(/\/tcp$/, '')
      .split(':');
    if (parts.length === 3) return { address: parts[0]!, host: parts[1]!, container: parts[2]! };
    if (parts.length === 2) return { address: '0.0.0.0', host: parts[0]!, container: parts[1]! };
    return { address: '0.0.0.0', host: parts[0]!, container: parts[0]! };
  });
}

/** The script a one-shot service runs: its entrypoint's path under ./deploy/temporal. */
function scriptOf(name: string): string {
  const script = service(name).entrypoint?.find((arg) => arg.endsWith('.sh'));
  expect(script, `${name} runs a script`).toMatch(/^\/deploy\/temporal\//);
  expect(service(name).volumes).toContain('./deploy/temporal:/deploy/temporal:ro');
  return readFileSync(script!.replace(/^\//, ''), 'utf8');
}

/** The Dockerfile's stages, each from its FROM line to the next. */
function stages(): Array<{ from: string; name?: string; body: string }> {
  const lines = dockerfile.split('\n').filter((l) => !l.trimStart().startsWith('#'));
  const result: Array<{ from: string; name?: string; body: string }> = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) result.push({ from: from[1]!, name: from[2], body: '' });
    else if (result.length) result[result.length - 1]!.body += `${line}\n`;
  }
  return result;
}

/** `-c max_connections=N` among a Postgres service's arguments. */
function maxConnections(name: string): number {
  const args = service(name).command ?? [];
  const setting = args.find((a) => a.startsWith('max_connections='));
  expect(setting, `${name} sets max_connections`).toBeDefined();
  return Number(setting!.split('=')[1]);
}

// deploy/gen-secrets.sh, run for real in a scratch copy of deploy/
let scratch: string;
let secretsDir: string;
beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-secrets-'));
  mkdirSync(path.join(scratch, 'deploy'));
  cpSync('deploy/gen-secrets.sh', path.join(scratch, 'deploy', 'gen-secrets.sh'));
  execFileSync('bash', [path.join(scratch, 'deploy', 'gen-secrets.sh')], { stdio: 'pipe' });
  secretsDir = path.join(scratch, 'deploy', 'secrets');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const secret = (file: string) => readFileSync(path.join(secretsDir, file), 'utf8');

describe('docker-compose.yml', () => {
  it('has the production services, each with a healthcheck', () => {
    for (const name of ['postgres', 'temporal', 'temporal-ui', 'warden-worker', 'warden-api']) {
      expect(services[name], name).toBeDefined();
      expect(services[name]!.healthcheck?.test, `${name} healthcheck`).toBeDefined();
    }
  });

  it('runs the whole observability stack and a Postgres replica, each with a healthcheck', () => {
    for (const name of ['postgres-replica', 'prometheus', 'alertmanager', 'grafana']) {
      expect(services[name], name).toBeDefined();
      expect(services[name]!.healthcheck?.test, `${name} healthcheck`).toBeDefined();
    }
    expect(services.jaeger?.environment).toMatchObject({ COLLECTOR_OTLP_ENABLED: 'true' });
  });

  it('streams the replica from the primary through a replication role whose password is a file', () => {
    expect(service('postgres-replica').depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
    });
    expect(service('postgres').command!.join(' ')).toContain('wal_level=replica');
    const entrypoint = readFileSync('deploy/postgres/replica-entrypoint.sh', 'utf8');
    expect(entrypoint).toMatch(/pg_basebackup .*-R/);
    // the replica runs with the compose command's settings, not only its own
    expect(entrypoint).toMatch(/exec postgres .*"\$@"/);
    expect(readFileSync('deploy/postgres/primary-init.sh', 'utf8')).toContain('WITH REPLICATION');
    expect(service('postgres-replica').secrets).toContain('replication-password');
  });

  it('loads the alert rules into Prometheus and routes Alertmanager to Warden with a token file', () => {
    expect(service('prometheus').volumes).toContain('./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro');
    expect(service('alertmanager').secrets).toContain('alertmanager-token');
    expect(env('warden-api').WARDEN_ALERTMANAGER_TOKEN_FILE).toBe('/run/secrets/alertmanager-token');
    expect(readFileSync('deploy/alertmanager/alertmanager.yml', 'utf8')).toContain(
      'http://warden-api:8081/alertmanager/webhook',
    );
  });

  it("mounts the fallback receiver's Slack webhook URL into Alertmanager, generated empty", () => {
    expect(service('alertmanager').secrets).toContain('alertmanager-fallback-slack-url');
    expect(compose.secrets['alertmanager-fallback-slack-url']?.file).toBe(
      './deploy/secrets/alertmanager-fallback-slack-url',
    );
    expect(readFileSync('deploy/alertmanager/alertmanager.yml', 'utf8')).toContain(
      'api_url_file: /run/secrets/alertmanager-fallback-slack-url',
    );
    // a placeholder: nothing to page through until an operator writes the URL
    expect(secret('alertmanager-fallback-slack-url')).toBe('');
    // Warden's own processes never see it
    for (const name of ['warden-api', 'warden-worker'])
      expect(service(name).secrets, name).not.toContain('alertmanager-fallback-slack-url');
  });

  it('generates every secret file the compose file mounts (running deploy/gen-secrets.sh)', () => {
    const generated = new Set(readdirSync(secretsDir));
    for (const [name, entry] of Object.entries(compose.secrets)) {
      expect(entry.file, name).toMatch(/^\.\/deploy\/secrets\//);
      expect(generated, name).toContain(entry.file.replace('./deploy/secrets/', ''));
    }
    // every secret a service mounts is declared
    for (const [name, s] of Object.entries(services)) {
      for (const mounted of s.secrets ?? []) expect(compose.secrets[mounted], `${name}: ${mounted}`).toBeDefined();
    }
  });

  it('passes secrets as files, never inline', () => {
    const api = env('warden-api');
    expect(api.WARDEN_ADMIN_TOKEN).toBeUndefined();
    expect(api.WARDEN_ADMIN_TOKEN_FILE).toBe('/run/secrets/admin-token');
    for (const s of service('warden-api').secrets!) {
      expect(compose.secrets[s]?.file, s).toMatch(/^\.\/deploy\/secrets\//);
    }
    // every *_FILE variable of a service names a secret that service mounts
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(env(name))) {
        if (!key.endsWith('_FILE') || !value.startsWith('/run/secrets/')) continue;
        expect(s.secrets, `${name}: ${key}`).toContain(value.replace('/run/secrets/', ''));
      }
    }
    // no password in Temporal's services either
    for (const name of ['temporal-postgres', 'temporal', 'temporal-schema']) {
      expect(env(name).POSTGRES_PASSWORD, name).toBeUndefined();
      expect(env(name).POSTGRES_PWD, name).toBeUndefined();
      expect(service(name).secrets, name).toContain('temporal-postgres-password');
    }
  });
});

describe('Temporal in compose', () => {
  const serverImage = /^temporalio\/server:(1\.2\d\.\d+)$/.exec(service('temporal').image ?? '');

  it('runs a current temporalio/server image and no auto-setup image anywhere', () => {
    expect(serverImage, service('temporal').image).not.toBeNull();
    for (const [name, s] of Object.entries(services)) expect(s.image ?? '', name).not.toContain('auto-setup');
  });

  it('applies both schemas with the admin tools of the same version before the server starts', () => {
    const setup = service('temporal-schema');
    expect(setup.image).toMatch(new RegExp(`^temporalio/admin-tools:${serverImage![1]!.replace(/\./g, '\\.')}(-|$)`));
    expect(service('temporal').depends_on).toMatchObject({
      'temporal-schema': { condition: 'service_completed_successfully' },
      'temporal-postgres': { condition: 'service_healthy' },
    });
    expect(setup.depends_on).toMatchObject({ 'temporal-postgres': { condition: 'service_healthy' } });
    const script = scriptOf('temporal-schema');
    expect(script).toContain('temporal-sql-tool --plugin postgres12');
    for (const database of ['DBNAME', 'VISIBILITY_DBNAME']) {
      expect(script).toMatch(new RegExp(`--db "\\$${database}" setup-schema -v 0\\.0`));
      expect(script).toMatch(new RegExp(`--db "\\$${database}" update-schema -d`));
    }
    expect(script).toContain('/temporal/versioned');
    expect(script).toContain('/visibility/versioned');
    expect(env('temporal-schema')).toMatchObject({ POSTGRES_SEEDS: 'temporal-postgres', DBNAME: 'temporal' });
  });

  it('creates the visibility database the server and the schema step name', () => {
    expect(service('temporal-postgres').volumes!.join('\n')).toContain(
      './deploy/temporal/init-databases.sql:/docker-entrypoint-initdb.d/',
    );
    const sql = readFileSync('deploy/temporal/init-databases.sql', 'utf8');
    expect(sql).toContain(`CREATE DATABASE ${env('temporal').VISIBILITY_DBNAME};`);
    expect(env('temporal-schema').VISIBILITY_DBNAME).toBe(env('temporal').VISIBILITY_DBNAME);
    expect(env('temporal-postgres').POSTGRES_DB).toBe(env('temporal').DBNAME);
  });

  it("configures the server image's template for Postgres persistence and Prometheus metrics", () => {
    expect(env('temporal')).toMatchObject({
      DB: 'postgres12',
      DB_PORT: '5432',
      POSTGRES_SEEDS: 'temporal-postgres',
      POSTGRES_USER: env('temporal-postgres').POSTGRES_USER,
      PROMETHEUS_ENDPOINT: '0.0.0.0:8000',
    });
    // the password reaches POSTGRES_PWD from the secret file, then the image's own entrypoint runs
    const entrypoint = service('temporal').entrypoint!.join(' ');
    expect(entrypoint).toContain('POSTGRES_PWD="$$(cat /run/secrets/temporal-postgres-password)"');
    expect(entrypoint).toContain('exec /etc/temporal/entrypoint.sh');
    expect(readFileSync('deploy/prometheus/prometheus.yml', 'utf8')).toContain('temporal:8000');
  });

  it('creates the default namespace once the server is healthy, and Warden waits for it', () => {
    const ns = service('temporal-namespace');
    expect(ns.image).toBe(service('temporal-schema').image);
    expect(ns.depends_on).toMatchObject({ temporal: { condition: 'service_healthy' } });
    const script = scriptOf('temporal-namespace');
    expect(script).toMatch(/temporal operator namespace create --namespace "\$NAMESPACE"/);
    expect(env('temporal-namespace').NAMESPACE).toBe(env('warden-api').TEMPORAL_NAMESPACE);
    for (const name of ['warden-worker', 'warden-api']) {
      expect(service(name).depends_on).toMatchObject({
        'temporal-namespace': { condition: 'service_completed_successfully' },
      });
    }
  });

  it('starts Warden only after Postgres and Temporal are healthy', () => {
    for (const name of ['warden-worker', 'warden-api']) {
      expect(service(name).depends_on).toMatchObject({
        postgres: { condition: 'service_healthy' },
        temporal: { condition: 'service_healthy' },
      });
    }
  });

  it('wires the Temporal UI to the codec server on the admin port, and exports traces over OTLP', () => {
    const ui = env('temporal-ui');
    expect(ui.TEMPORAL_CODEC_ENDPOINT).toMatch(/:9090\/codec\}?$/);
    expect(ui.TEMPORAL_CODEC_PASS_ACCESS_TOKEN).toBe('true');
    const api = env('warden-api');
    expect(api.WARDEN_CODEC_TOKEN_FILE).toBe('/run/secrets/codec-token');
    expect(api.WARDEN_CODEC_ENCODE_TOKEN_FILE).toBe('/run/secrets/codec-encode-token');
    expect(api.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
  });
});

describe('what is published where', () => {
  it('publishes the public API and the Slack/Alertmanager listener on every interface, and nothing else', () => {
    const open = Object.keys(services).flatMap((name) =>
      published(name)
        .filter((p) => p.address !== '127.0.0.1')
        .map((p) => `${name}:${p.container}`),
    );
    const integrations = service('warden-api').environment?.WARDEN_INTEGRATIONS_PORT;
    expect(integrations).toBeDefined();
    expect(open).toEqual([
      `warden-api:${ConfigSchema.properties.WARDEN_PUBLIC_PORT.default}`,
      `warden-api:${integrations}`,
    ]);
  });

  it('runs Warden in production mode unless told otherwise, with every provider credential mounted', () => {
    expect(service('warden-api').environment?.WARDEN_ENV).toBe('${WARDEN_ENV:-production}');
    for (const name of ['HCAPTCHA_SECRET_FILE', 'HCAPTCHA_SITE_KEY_FILE'])
      expect(service('warden-worker').environment?.[name], name).toMatch(/^\/run\/secrets\//);
  });

  it('keeps Temporal gRPC, the UI, the admin port and the sandbox on 127.0.0.1, metrics unpublished', () => {
    expect(published('temporal')).toEqual([{ address: '127.0.0.1', host: '7233', container: '7233' }]);
    expect(published('temporal-ui').every((p) => p.address === '127.0.0.1')).toBe(true);
    expect(published('warden-api')).toContainEqual({ address: '127.0.0.1', host: '9090', container: '9090' });
    const metricsPort = String(ConfigSchema.properties.WARDEN_METRICS_PORT.default);
    for (const name of ['warden-api', 'warden-worker', 'temporal']) {
      expect(published(name).map((p) => p.container)).not.toContain(metricsPort);
      expect(published(name).map((p) => p.container)).not.toContain('8000');
    }
  });
});

describe('Warden image (Dockerfile)', () => {
  const all = stages();
  const runtime = all[all.length - 1]!;

  it('builds in one stage with every dependency and runs in another with production ones only', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    const build = all.find((s) => /\bnpx tsc -p tsconfig\.build\.json\b/.test(s.body));
    expect(build, 'a stage compiles with tsconfig.build.json').toBeDefined();
    expect(build!.body).toMatch(/npm ci(?! --omit)/);
    expect(build).not.toBe(runtime);
    // runtime node_modules come from an `npm ci --omit=dev` (in it or in the stage it copies from)
    const copied = [...runtime.body.matchAll(/COPY --from=(\S+)[^\n]*node_modules/g)].map((m) => m[1]);
    const prodInstall = [runtime, ...all.filter((s) => s.name && copied.includes(s.name))].some((s) =>
      /npm ci --omit=dev/.test(s.body),
    );
    expect(prodInstall).toBe(true);
    expect(runtime.body).not.toMatch(/npm ci(?! --omit=dev)/);
    expect(runtime.body).not.toMatch(/\btsx\b|\bnpx tsc\b/);
  });

  it('prebuilds the workflow bundle and points WARDEN_WORKFLOW_BUNDLE at it', () => {
    const bundle = /node dist\/src\/worker\/bundle\.js (\S+)/.exec(dockerfile);
    expect(bundle, 'the build runs src/worker/bundle.ts').not.toBeNull();
    expect(existsSync('src/worker/bundle.ts')).toBe(true);
    expect(runtime.body).toContain(`ENV WARDEN_WORKFLOW_BUNDLE=/app/${bundle![1]}`);
    expect(runtime.body).toMatch(/COPY --from=build\b[^\n]*\/app\/dist/);
    // the worker reads it (src/worker/main.ts)
    expect(readFileSync('src/worker/main.ts', 'utf8')).toContain('process.env.WARDEN_WORKFLOW_BUNDLE');
  });

  it('compiles only src/, and ships the migrations and templates where compiled code looks for them', () => {
    const build = ts.parseConfigFileTextToJson('tsconfig.build.json', readFileSync('tsconfig.build.json', 'utf8'))
      .config as { extends: string; include: string[]; compilerOptions: { outDir: string; rootDir: string } };
    expect(build.extends).toBe('./tsconfig.json');
    expect(build.include).toEqual(['src']);
    expect(build.compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
    // src/db/migrate.ts resolves ../../migrations from its folder: dist/src/db -> dist/migrations
    expect(path.relative(path.resolve('src/db'), MIGRATIONS_DIR)).toBe(path.join('..', '..', 'migrations'));
    expect(runtime.body).toMatch(/COPY migrations \.\/dist\/migrations/);
    // src/auth/messageCatalog.ts finds the shipped templates the same way: dist/templates
    expect(path.relative(path.resolve('src/auth'), SHIPPED_TEMPLATES_DIR)).toBe(path.join('..', '..', 'templates'));
    expect(runtime.body).toMatch(/COPY templates \.\/dist\/templates/);
  });

  it('runs as a non-root user with a liveness HEALTHCHECK; compose waits on readiness', () => {
    const user = /^USER\s+(\S+)/m.exec(runtime.body);
    expect(user?.[1]).toBeDefined();
    expect(['root', '0']).not.toContain(user![1]);
    expect(runtime.body).toMatch(/HEALTHCHECK[\s\S]*\/livez/);
    expect(JSON.stringify(service('warden-api').healthcheck!.test)).toContain('/readyz');
  });

  it('starts each service from a compiled entry point that exists in src/', () => {
    expect(runtime.body).toContain('CMD ["node", "dist/src/api/main.js"]');
    for (const name of ['warden-api', 'warden-worker', 'provider-sandbox']) {
      const [node, entry] = service(name).command!;
      expect(node, name).toBe('node');
      expect(entry, name).toMatch(/^dist\/src\/.+\.js$/);
      expect(existsSync(entry!.replace(/^dist\//, '').replace(/\.js$/, '.ts')), `${name}: ${entry}`).toBe(true);
      expect(service(name).build, name).toBe('.');
    }
  });
});

describe('providers and the database in compose', () => {
  it('reads every provider credentials file the config knows from a secret, generated empty', () => {
    const variables = Object.keys(ConfigSchema.properties).filter((k) => k.endsWith('_CREDENTIALS_FILE'));
    expect(variables.length).toBeGreaterThanOrEqual(5);
    for (const name of ['warden-api', 'warden-worker']) {
      for (const variable of variables) {
        const file = env(name)[variable];
        expect(file, `${name}: ${variable}`).toMatch(/^\/run\/secrets\//);
        const secretName = file!.replace('/run/secrets/', '');
        expect(service(name).secrets, `${name}: ${variable}`).toContain(secretName);
        // {}: no credentials, so the provider talks to the sandbox until real ones are written
        expect(JSON.parse(secret(compose.secrets[secretName]!.file.replace('./deploy/secrets/', '')))).toEqual({});
      }
    }
  });

  it('runs the provider sandbox only under the dev profile, bound inside the compose network', () => {
    const sandbox = service('provider-sandbox');
    expect(sandbox.profiles).toEqual(['dev']);
    expect(env('provider-sandbox').WARDEN_HOST).toBe('0.0.0.0');
    expect(published('provider-sandbox').every((p) => p.address === '127.0.0.1')).toBe(true);
    const port = env('provider-sandbox').WARDEN_SANDBOX_PORT;
    expect(env('warden-api').WARDEN_SANDBOX_URL).toBe(`http://provider-sandbox:${port}`);
    expect(JSON.stringify(sandbox.healthcheck!.test)).toContain(`:${port}/sandbox/health`);
    for (const [name, s] of Object.entries(services)) {
      if (name !== 'provider-sandbox') expect(s.profiles, name).toBeUndefined();
    }
  });

  it('hands Warden the primary and the streaming replica as failover candidates', () => {
    expect(env('warden-api').WARDEN_DATABASE_URLS_FILE).toBe('/run/secrets/database-urls');
    const urls = secret('database-urls').split(',');
    const endpoints = parseEndpoints([secret('database-url'), ...urls]).map((e) => e.id);
    expect(endpoints).toEqual(['postgres:5432', 'postgres-replica:5432']);
    for (const host of endpoints.map((id) => id.split(':')[0]!)) expect(services[host], host).toBeDefined();
    const password = secret('postgres-password');
    for (const url of urls) expect(new URL(url).password).toBe(password);
  });

  it('sizes max_connections for the pool the failover runbook sets in every process', () => {
    // docker-compose.yml shows the arithmetic: 1 API + 4 workers, each with the raised pool
    // plus its topology probe, a probe or check per candidate and a migration connection
    const processes = 5;
    const perProcess = DB_FAILOVER_DEFAULTS.pool.max + 1 + 2 + 1;
    const superuserReserved = 3;
    const needed = processes * perProcess + superuserReserved;
    expect(maxConnections('postgres')).toBeGreaterThanOrEqual(needed);
    // the replica is promoted into the same role, and a hot standby needs at least the primary's
    expect(maxConnections('postgres-replica')).toBeGreaterThanOrEqual(maxConnections('postgres'));
    expect(service('postgres-replica').command!.join(' ')).toContain('shared_preload_libraries=pg_stat_statements');
  });
});

// CI installs Debian's docker-compose (1.29), which validates the file without an engine
describe.runIf(hasDockerCompose() || process.env.CI === 'true')('docker-compose config', () => {
  it('accepts the file and knows the dev profile', () => {
    expect(() => execFileSync('docker-compose', ['config', '-q'], { stdio: 'pipe' })).not.toThrow();
    const profiles = execFileSync('docker-compose', ['config', '--profiles'], { encoding: 'utf8' });
    expect(profiles.trim().split('\n')).toEqual(['dev']);
  });
});
