/**
 * `warden apps …` as an operator runs it (`node bin/warden.mjs` in a child process against a
 * Warden on real ports): register, change, disable and enable an app, create, list and revoke
 * its keys. Outcomes are read back through the admin API; the key is printed once, by `keys
 * create`, and by nothing else.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateAppKey } from '../../src/auth/apps';
import { EXIT } from '../../src/cli/command';
import { startHarness, type Harness } from '../helpers/harness';

const BIN = path.join(process.cwd(), 'bin', 'warden.mjs');

describe('warden apps', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ listen: true, worker: false });
  });
  afterAll(async () => h?.close());

  const warden = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args],
        {
          cwd: process.cwd(),
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '',
            WARDEN_ADMIN_URL: h.servers!.urls.admin,
            WARDEN_TOKEN: h.config.adminToken,
          },
          timeout: 60_000,
        },
        (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
      );
    });
  const appOf = async (clientId: string) =>
    (await h.admin.inject({ method: 'GET', url: `/admin/api/v1/apps/${clientId}`, headers: h.adminHeaders })).json<
      Record<string, unknown>
    >();

  it('registers, changes, disables and enables an app, and manages its keys', async () => {
    const created = await warden([
      'apps',
      'create',
      'cli-shop',
      '--name',
      'CLI shop',
      '--methods',
      'sms_otp,magic_link',
      '--redirect-uri',
      'https://shop.example.com/cb',
      '--redirect-uri',
      'http://127.0.0.1:3000/cb',
      '--web-origin',
      'https://shop.example.com',
      '--initiate-limit',
      '100/1m',
      '--locale',
      'pt-BR',
    ]);
    expect(created.code, created.stderr).toBe(EXIT.ok);
    expect(created.stdout).toContain('cli-shop');
    expect(await appOf('cli-shop')).toMatchObject({
      name: 'CLI shop',
      methods: ['sms_otp', 'magic_link'],
      redirect_uris: ['https://shop.example.com/cb', 'http://127.0.0.1:3000/cb'],
      web_origins: ['https://shop.example.com'],
      initiate_limit: { window_seconds: 60, max_attempts: 100 },
      locale: 'pt-BR',
      created_by: 'admin-api',
    });

    const refused = await warden([
      'apps',
      'create',
      'cli-bad',
      '--name',
      'x',
      '--methods',
      'sms_otp',
      '--redirect-uri',
      'http://evil.example/cb',
    ]);
    expect(refused.code).toBe(EXIT.refused);
    expect(refused.stderr).toContain('invalid_request');

    const updated = await warden([
      'apps',
      'update',
      'cli-shop',
      '--token-ttl',
      '1h',
      '--initiate-limit',
      'none',
      '--clear-web-origins',
      '--locale',
      'none',
    ]);
    expect(updated.code, updated.stderr).toBe(EXIT.ok);
    expect(await appOf('cli-shop')).toMatchObject({
      token_ttl_seconds: 3600,
      initiate_limit: null,
      web_origins: [],
      locale: null,
    });

    const issued = await warden([
      'apps',
      'keys',
      'create',
      'cli-shop',
      '--label',
      'production',
      '--expires-in',
      '90d',
      '--json',
    ]);
    expect(issued.code, issued.stderr).toBe(EXIT.ok);
    const { key, info } = JSON.parse(issued.stdout) as { key: string; info: { id: string } };
    expect((await authenticateAppKey(h.runtime.db, key))?.clientId).toBe('cli-shop');

    const shown = await warden(['apps', 'show', 'cli-shop']);
    expect(shown.code, shown.stderr).toBe(EXIT.ok);
    expect(shown.stdout).toContain(info.id);
    expect(shown.stdout).toContain('production');
    expect(shown.stdout).not.toContain(key);
    const listed = await warden(['apps', 'list']);
    expect(listed.stdout).toMatch(/cli-shop\s+CLI shop\s+enabled/);
    expect(listed.stdout).toContain('warden-dev');

    expect((await warden(['apps', 'disable', 'cli-shop'])).stdout).toContain('cli-shop is disabled');
    expect(await appOf('cli-shop')).toMatchObject({ disabled: true });
    expect(await authenticateAppKey(h.runtime.db, key)).toBeUndefined();
    expect((await warden(['apps', 'enable', 'cli-shop'])).code).toBe(EXIT.ok);

    const revoked = await warden(['apps', 'keys', 'revoke', 'cli-shop', info.id]);
    expect(revoked.code, revoked.stderr).toBe(EXIT.ok);
    expect(await authenticateAppKey(h.runtime.db, key)).toBeUndefined();
    const keys = await warden(['apps', 'keys', 'list', 'cli-shop', '--json']);
    expect(JSON.parse(keys.stdout)).toMatchObject({ keys: [{ id: info.id, active: false }] });

    const missing = await warden(['apps', 'show', 'no-such-app']);
    expect(missing.code).toBe(EXIT.refused);
    expect(missing.stderr).toContain('not_found');
    const usage = await warden(['apps', 'update', 'cli-shop']);
    expect(usage.code).toBe(EXIT.usage);
  });
});
