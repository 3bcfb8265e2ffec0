/**
 * Registered apps on the admin API: create, read, change, list with a cursor, disable and
 * enable, audited with the acting operator; redirect URIs and web origins held to https (http
 * on loopback only) with the field named; API keys shown once, stored as digests, revocable,
 * expiring, dead with a disabled app; the three ways an app authenticates; the per-app rate
 * limit under a concurrent burst; and the idempotent seed of the development app.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installErrorHandling } from '../../src/api/errors';
import { appFromRequest } from '../../src/api/plugins/appAuth';
import { authenticateAppKey, checkAppRateLimit, ensureApp, findApp, type App } from '../../src/auth/apps';
import { DEV_APP_ID } from '../../src/db/seed';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

type Method = 'GET' | 'POST' | 'PATCH';

describe('apps API', () => {
  let h: Harness;
  let admin: { authorization: string };
  let viewer: { authorization: string };
  const keys: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    admin = await operatorHeaders(h, 'ada', 'admin');
    viewer = await operatorHeaders(h, 'vera', 'viewer');
  });
  afterAll(async () => h?.close());

  const api = (method: Method, url: string, payload?: unknown, headers: Record<string, string> = admin) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const newKey = async (clientId: string, body?: Record<string, unknown>) => {
    const res = await api('POST', `/apps/${clientId}/keys`, body);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const issued = res.json<{ key: string; info: { id: string; hint: string; active: boolean } }>();
    keys.push(issued.key);
    return issued;
  };
  const auditOf = (type: string) =>
    h.sql<{ details: Record<string, unknown> }>('SELECT details FROM audit_events WHERE event_type = $1 ORDER BY id', [
      type,
    ]);

  it('creates, reads, changes, lists, disables and enables an app, audited with the operator', async () => {
    const created = await api('POST', '/apps', {
      client_id: 'shop-web',
      name: 'Shop',
      methods: ['magic_link'],
      redirect_uris: ['https://shop.example.com/callback', 'http://127.0.0.1:3000/cb'],
      web_origins: ['https://shop.example.com', 'http://localhost:3000'],
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.headers.location).toBe('/admin/api/v1/apps/shop-web');
    expect(created.json()).toMatchObject({
      client_id: 'shop-web',
      name: 'Shop',
      methods: ['magic_link'],
      token_ttl_seconds: 900,
      initiate_limit: null,
      verify_limit: null,
      disabled: false,
      created_by: 'ada',
    });
    expect((await api('GET', '/apps/shop-web', undefined, viewer)).json()).toMatchObject({
      redirect_uris: ['https://shop.example.com/callback', 'http://127.0.0.1:3000/cb'],
      web_origins: ['https://shop.example.com', 'http://localhost:3000'],
    });

    const changed = await api('PATCH', '/apps/shop-web', {
      name: 'Shop (web)',
      methods: ['sms_otp', 'magic_link'],
      token_ttl_seconds: 3600,
      initiate_limit: { window_seconds: 60, max_attempts: 100 },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({
      name: 'Shop (web)',
      methods: ['sms_otp', 'magic_link'],
      token_ttl_seconds: 3600,
      initiate_limit: { window_seconds: 60, max_attempts: 100 },
      verify_limit: null,
    });
    // this process sees the change at once, whatever its cache held
    expect(await findApp(h.runtime.db, 'shop-web')).toMatchObject({
      name: 'Shop (web)',
      initiateLimit: { windowSeconds: 60, maxAttempts: 100 },
    });
    // the same values again change nothing and audit nothing
    // (and what a body leaves out stays as it is)
    const again = await api('PATCH', '/apps/shop-web', { name: 'Shop (web)' });
    expect(again.json()).toMatchObject({ token_ttl_seconds: 3600, initiate_limit: { max_attempts: 100 } });

    const disabled = await api('POST', '/apps/shop-web/disable');
    expect(disabled.json()).toMatchObject({ disabled: true });
    expect(disabled.json().disabled_at).not.toBeNull();
    expect((await findApp(h.runtime.db, 'shop-web'))?.disabled).toBe(true);
    expect((await api('POST', '/apps/shop-web/disable')).statusCode).toBe(200);
    expect((await api('POST', '/apps/shop-web/enable')).json()).toMatchObject({ disabled: false, disabled_at: null });

    expect(await auditOf('identity.app.created')).toEqual([
      { details: expect.objectContaining({ actor: 'ada', client_id: 'shop-web', methods: ['magic_link'] }) },
    ]);
    const updates = await auditOf('identity.app.updated');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.details).toMatchObject({
      actor: 'ada',
      client_id: 'shop-web',
      fields: ['name', 'methods', 'token_ttl_seconds', 'initiate_limit'],
      before: { name: 'Shop', token_ttl_seconds: 900, initiate_limit: null },
      after: { name: 'Shop (web)', token_ttl_seconds: 3600 },
    });
    expect(await auditOf('identity.app.disabled')).toHaveLength(1);
    expect(await auditOf('identity.app.enabled')).toHaveLength(1);
  });

  it('lists apps in client_id order with a cursor', async () => {
    for (const id of ['list-a', 'list-b', 'list-c', 'list-d'])
      expect((await api('POST', '/apps', { client_id: id, name: id, methods: ['sms_otp'] })).statusCode).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await api('GET', `/apps?limit=2${cursor ? `&cursor=${cursor}` : ''}`, undefined, viewer);
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<{ apps: Array<{ client_id: string }>; next_cursor: string | null }>();
      expect(page.apps.length).toBeLessThanOrEqual(2);
      seen.push(...page.apps.map((a) => a.client_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(['list-a', 'list-b', 'list-c', 'list-d', 'shop-web', DEV_APP_ID]));
  });

  it('refuses bad redirect URIs, origins and other fields with 400 naming the field, and writes nothing', async () => {
    const base = { client_id: 'bad-app', name: 'Bad', methods: ['sms_otp'] };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ redirect_uris: ['http://shop.example.com/cb'] }, 'redirect_uris'], // http off loopback
      [{ redirect_uris: ['http://10.0.0.1/cb'] }, 'redirect_uris'],
      [{ redirect_uris: ['http://127.0.0.1.evil.example/cb'] }, 'redirect_uris'],
      [{ redirect_uris: ['http://localhost@evil.example/cb'] }, 'redirect_uris'],
      [{ redirect_uris: ['https://shop.example.com/cb#frag'] }, 'redirect_uris'],
      [{ redirect_uris: ['https://shop.example.com/cb#'] }, 'redirect_uris'],
      [{ redirect_uris: ['not a url'] }, 'redirect_uris'],
      [{ redirect_uris: ['/relative/cb'] }, 'redirect_uris'],
      [{ redirect_uris: ['https:shop.example.com/cb'] }, 'redirect_uris'],
      [{ redirect_uris: ['javascript:alert(1)'] }, 'redirect_uris'],
      [{ redirect_uris: ['https://*.example.com/cb'] }, 'redirect_uris'],
      [{ redirect_uris: ['https://user:pw@shop.example.com/cb'] }, 'redirect_uris'],
      [{ redirect_uris: [''] }, 'redirect_uris'],
      [{ redirect_uris: 'https://shop.example.com/cb' }, 'redirect_uris'],
      [{ web_origins: ['http://shop.example.com'] }, 'web_origins'],
      [{ web_origins: ['https://shop.example.com/'] }, 'web_origins'], // a path, even /
      [{ web_origins: ['https://shop.example.com/app'] }, 'web_origins'],
      [{ web_origins: ['https://Shop.Example.com'] }, 'web_origins'], // not as browsers send it
      [{ web_origins: ['https://shop.example.com:443'] }, 'web_origins'],
      [{ web_origins: ['garbage'] }, 'web_origins'],
      [{ methods: [] }, 'methods'],
      [{ methods: ['password'] }, 'methods'],
      [{ token_ttl_seconds: 30 }, 'token_ttl_seconds'],
      [{ token_ttl_seconds: 86_401 }, 'token_ttl_seconds'],
      [{ initiate_limit: { window_seconds: 60 } }, 'initiate_limit'],
      [{ verify_limit: { window_seconds: 0, max_attempts: 5 } }, 'verify_limit'],
      [{ client_id: 'Has Caps' }, 'client_id'],
      [{ client_id: 'ab' }, 'client_id'],
      [{ name: '' }, 'name'],
      [{ owner: 'mallory' }, 'owner'],
    ];
    for (const [change, field] of cases) {
      const res = await api('POST', '/apps', { ...base, ...change });
      expect(res.statusCode, JSON.stringify(change)).toBe(400);
      expect(res.json(), JSON.stringify(change)).toMatchObject({ error: 'invalid_request', field });
    }
    expect(await h.sql("SELECT count(*)::int AS n FROM apps WHERE client_id = 'bad-app'")).toEqual([{ n: 0 }]);

    // the same rules on a change, and the other refusals with their codes
    const patch = await api('PATCH', '/apps/shop-web', { redirect_uris: ['http://shop.example.com/cb'] });
    expect(patch.statusCode).toBe(400);
    expect(patch.json()).toMatchObject({ error: 'invalid_request', field: 'redirect_uris' });
    expect((await api('PATCH', '/apps/shop-web', { client_id: 'other' })).json()).toMatchObject({
      error: 'invalid_request',
      field: 'client_id',
    });
    expect((await api('PATCH', '/apps/shop-web', {})).statusCode).toBe(400);
    const dup = await api('POST', '/apps', { client_id: 'shop-web', name: 'Again', methods: ['sms_otp'] });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ error: 'app_exists', field: 'client_id' });
    for (const [method, url] of [
      ['GET', '/apps/no-such-app'],
      ['PATCH', '/apps/no-such-app'],
      ['POST', '/apps/no-such-app/disable'],
      ['POST', '/apps/no-such-app/keys'],
      ['GET', '/apps/no-such-app/keys'],
      ['POST', '/apps/shop-web/keys/00000000-0000-0000-0000-000000000000/revoke'],
    ] as const) {
      const res = await api(method, url, method === 'GET' ? undefined : method === 'PATCH' ? { name: 'x' } : {});
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json()).toMatchObject({ error: 'not_found' });
    }
    expect((await api('GET', '/apps/shop-web')).json().redirect_uris).toEqual([
      'https://shop.example.com/callback',
      'http://127.0.0.1:3000/cb',
    ]);
  });

  it('lets a viewer read apps and keys, and only an admin change them (403 otherwise)', async () => {
    const created = await api('POST', '/apps', { client_id: 'viewer-app', name: 'V', methods: ['sms_otp'] }, viewer);
    expect(created.statusCode).toBe(403);
    expect(created.json()).toMatchObject({ error: 'forbidden', needed_role: 'admin' });
    for (const [method, url] of [
      ['PATCH', '/apps/shop-web'],
      ['POST', '/apps/shop-web/disable'],
      ['POST', '/apps/shop-web/enable'],
      ['POST', '/apps/shop-web/keys'],
      ['POST', '/apps/shop-web/keys/00000000-0000-0000-0000-000000000000/revoke'],
    ] as const) {
      const res = await api(method, url, { name: 'x' }, viewer);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
    }
    expect((await api('GET', '/apps/shop-web/keys', undefined, viewer)).statusCode).toBe(200);
    expect(await h.sql("SELECT count(*)::int AS n FROM apps WHERE client_id = 'viewer-app'")).toEqual([{ n: 0 }]);
    const unauthenticated = await h.admin.inject({ method: 'GET', url: '/admin/api/v1/apps' });
    expect(unauthenticated.statusCode).toBe(401);
  });

  it('shows a key once, keeps only its digest, and authenticates with it while it is live', async () => {
    const first = await newKey('shop-web', { label: 'production' });
    expect(first.key).toMatch(/^wak_[A-Za-z0-9_-]{43}$/);
    expect(first.key.startsWith(first.info.hint)).toBe(true);
    const second = await newKey('shop-web', { label: 'next', expires_in_seconds: 3600 });

    // two live keys at once: the rotation's overlap
    expect((await authenticateAppKey(h.runtime.db, first.key))?.clientId).toBe('shop-web');
    expect((await authenticateAppKey(h.runtime.db, second.key))?.clientId).toBe('shop-web');
    await waitFor('last_used_at', async () => {
      const rows = await h.sql<{ last_used_at: Date | null }>('SELECT last_used_at FROM app_keys WHERE id = $1', [
        first.info.id,
      ]);
      return rows[0]?.last_used_at ?? undefined;
    });
    const listed = await api('GET', '/apps/shop-web/keys', undefined, viewer);
    const list = listed.json<{ keys: Array<{ id: string; label: string; active: boolean; last_used_at: string }> }>();
    expect(list.keys.map((k) => [k.label, k.active])).toEqual([
      ['production', true],
      ['next', true],
    ]);
    expect(list.keys[0]!.last_used_at).not.toBeNull();

    // unknown and malformed keys
    expect(await authenticateAppKey(h.runtime.db, 'wak_' + 'x'.repeat(43))).toBeUndefined();
    expect(await authenticateAppKey(h.runtime.db, 'not-a-key')).toBeUndefined();
    expect(await authenticateAppKey(h.runtime.db, first.key.replace(/^wak_/, 'wop_'))).toBeUndefined();

    // revoked: at once, and again changes nothing
    const revoked = await api('POST', `/apps/shop-web/keys/${first.info.id}/revoke`);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ id: first.info.id, active: false });
    expect(await authenticateAppKey(h.runtime.db, first.key)).toBeUndefined();
    expect((await api('POST', `/apps/shop-web/keys/${first.info.id}/revoke`)).statusCode).toBe(200);
    // a key id of another app is not this app's
    expect((await api('POST', `/apps/list-a/keys/${second.info.id}/revoke`)).statusCode).toBe(404);

    // expired (time moved by rewriting the row)
    await h.sql("UPDATE app_keys SET expires_at = now() - interval '1 second' WHERE id = $1", [second.info.id]);
    expect(await authenticateAppKey(h.runtime.db, second.key)).toBeUndefined();

    // a disabled app's keys stop, and work again once it is enabled
    const third = await newKey('shop-web'); // no body at all: no label, no expiry
    expect((await api('POST', '/apps/shop-web/disable')).statusCode).toBe(200);
    expect(await authenticateAppKey(h.runtime.db, third.key)).toBeUndefined();
    expect((await api('POST', '/apps/shop-web/enable')).statusCode).toBe(200);
    expect((await authenticateAppKey(h.runtime.db, third.key))?.clientId).toBe('shop-web');

    expect((await auditOf('identity.app.key.created')).map((r) => r.details)).toEqual([
      expect.objectContaining({ actor: 'ada', client_id: 'shop-web', key_id: first.info.id, label: 'production' }),
      expect.objectContaining({ key_id: second.info.id }),
      expect.objectContaining({ key_id: third.info.id }),
    ]);
    expect((await auditOf('identity.app.key.revoked')).map((r) => r.details)).toEqual([
      { actor: 'ada', client_id: 'shop-web', key_id: first.info.id },
    ]);
  });

  it('authenticates an app by Basic, Bearer or client_secret_post, and answers 401 invalid_client otherwise', async () => {
    const { key } = await newKey('list-a', { label: 'server' });
    const other = await newKey('list-b');
    const probe: FastifyInstance = Fastify();
    probe.decorate('warden', h.runtime);
    installErrorHandling(probe);
    await probe.register(formbody);
    probe.post('/probe', async (request) => {
      const found: App = await appFromRequest(probe, request, request.body as Record<string, unknown> | undefined);
      return { client_id: found.clientId };
    });
    await probe.ready();
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    const call = (headers: Record<string, string>, form?: Record<string, string>) =>
      probe.inject({
        method: 'POST',
        url: '/probe',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams(form ?? {}).toString(),
      });

    try {
      for (const res of [
        await call({ authorization: basic('list-a', key) }),
        await call({ authorization: `Bearer ${key}` }),
        await call({}, { client_id: 'list-a', client_secret: key }),
        await call({ authorization: `Bearer ${key}` }, { client_id: 'list-a' }),
        await call({ authorization: basic('list-a', key) }, { client_id: 'list-a', grant_type: 'x' }),
      ]) {
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual({ client_id: 'list-a' });
      }

      const refusals: Array<[Record<string, string>, Record<string, string> | undefined, string]> = [
        [{}, undefined, 'Basic'],
        [{ authorization: basic('list-b', key) }, undefined, 'Basic'], // another app's id
        [{ authorization: basic('list-a', other.key) }, undefined, 'Basic'],
        [{ authorization: basic('list-a', 'wak_' + 'x'.repeat(43)) }, undefined, 'Basic'],
        [{ authorization: `Basic ${Buffer.from('list-a').toString('base64')}` }, undefined, 'Basic'],
        [{ authorization: 'Bearer wak_nope' }, undefined, 'Bearer'],
        [{ authorization: `Bearer ${key}` }, { client_id: 'list-b' }, 'Bearer'],
        [{ authorization: `Digest ${key}` }, undefined, 'Basic'],
        [{}, { client_id: 'list-b', client_secret: key }, 'Basic'],
        [{}, { client_secret: key }, 'Basic'],
        [{}, { client_id: 'list-a' }, 'Basic'],
        [{ authorization: `Bearer ${key}` }, { client_id: 'list-a', client_secret: key }, 'Basic'], // two methods
      ];
      for (const [headers, form, scheme] of refusals) {
        const res = await call(headers, form);
        expect(res.statusCode, JSON.stringify([headers, form])).toBe(401);
        expect(res.json()).toMatchObject({ error: 'invalid_client' });
        expect(res.headers['www-authenticate']).toBe(`${scheme} realm="warden-apps"`);
        expect(res.body).not.toContain(key);
      }

      // a disabled app cannot authenticate by any method
      expect((await api('POST', '/apps/list-a/disable')).statusCode).toBe(200);
      expect((await call({ authorization: `Bearer ${key}` })).statusCode).toBe(401);
      expect((await call({}, { client_id: 'list-a', client_secret: key })).statusCode).toBe(401);
      expect((await api('POST', '/apps/list-a/enable')).statusCode).toBe(200);
      expect((await call({ authorization: basic('list-a', key) })).statusCode).toBe(200);
    } finally {
      await probe.close();
    }
  });

  it('holds an app to its own limit: refused beyond it, and a concurrent burst admits exactly the limit', async () => {
    const created = await api('POST', '/apps', {
      client_id: 'limited',
      name: 'Limited',
      methods: ['sms_otp'],
      initiate_limit: { window_seconds: 3600, max_attempts: 3 },
      verify_limit: { window_seconds: 3600, max_attempts: 7 },
    });
    expect(created.statusCode, created.body).toBe(201);
    const app = (await findApp(h.runtime.db, 'limited'))!;

    const sequential = [];
    for (let i = 0; i < 5; i++) sequential.push(await checkAppRateLimit(h.runtime.db, app, 'initiate'));
    expect(sequential.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
    const refused = sequential[3]!;
    if (refused.allowed) throw new Error('expected a refusal');
    expect(refused).toMatchObject({ limit: 3, windowSeconds: 3600 });
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(3600);

    // verifies are counted apart from initiates; a burst of 20 admits exactly 7
    const burst = await Promise.all(Array.from({ length: 20 }, () => checkAppRateLimit(h.runtime.db, app, 'verify')));
    expect(burst.filter((d) => d.allowed)).toHaveLength(7);
    // refused attempts are kept but do not count
    expect(
      await h.sql(
        "SELECT exceeded, count(*)::int AS n FROM app_rate_limit_attempts WHERE client_id = 'limited' AND action = 'verify' GROUP BY exceeded ORDER BY exceeded",
      ),
    ).toEqual([
      { exceeded: false, n: 7 },
      { exceeded: true, n: 13 },
    ]);

    // an app without a limit is not counted at all; another app's attempts are its own
    const unlimited = (await findApp(h.runtime.db, 'list-c'))!;
    for (let i = 0; i < 10; i++)
      expect((await checkAppRateLimit(h.runtime.db, unlimited, 'initiate')).allowed).toBe(true);
    expect(await h.sql("SELECT count(*)::int AS n FROM app_rate_limit_attempts WHERE client_id = 'list-c'")).toEqual([
      { n: 0 },
    ]);
    // lifting the limit lets the app through at once
    expect((await api('PATCH', '/apps/limited', { initiate_limit: null })).statusCode).toBe(200);
    const lifted = (await findApp(h.runtime.db, 'limited'))!;
    expect(lifted.initiateLimit).toBeNull();
    expect((await checkAppRateLimit(h.runtime.db, lifted, 'initiate')).allowed).toBe(true);
  });

  it('seeds the development app once, as the default, and never overwrites it', async () => {
    expect(h.config.apps.defaultClientId).toBe(DEV_APP_ID);
    const seeded = await findApp(h.runtime.db, DEV_APP_ID);
    expect(seeded).toMatchObject({
      clientId: DEV_APP_ID,
      name: 'Warden development',
      methods: ['sms_otp', 'magic_link'],
      webOrigins: [],
      disabled: false,
    });
    // no redirect URI: a link confirmed where it was asked for lands on Warden's own page
    expect(seeded!.redirectUris).toEqual([]);

    const spec = {
      clientId: 'seeded',
      name: 'Seeded',
      methods: ['sms_otp' as const],
      redirectUris: ['https://seeded.example.com/cb'],
    };
    const once = await ensureApp(h.runtime.db, spec);
    const twice = await ensureApp(h.runtime.db, spec);
    expect(twice).toEqual(once);
    expect(await h.sql("SELECT count(*)::int AS n FROM apps WHERE client_id = 'seeded'")).toEqual([{ n: 1 }]);
    // an operator's change stands through the next start's seed
    expect((await api('PATCH', '/apps/seeded', { name: 'Renamed' })).statusCode).toBe(200);
    expect((await ensureApp(h.runtime.db, spec)).name).toBe('Renamed');
    await expect(
      ensureApp(h.runtime.db, { ...spec, redirectUris: ['http://seeded.example.com/cb'] }),
    ).rejects.toMatchObject({ code: 'invalid_request', field: 'redirect_uris' });
  });

  it('never stores, audits or logs a key', async () => {
    expect(keys.length).toBeGreaterThan(3);
    const tables = JSON.stringify([
      await h.sql('SELECT * FROM apps'),
      await h.sql('SELECT * FROM app_keys'),
      await h.sql('SELECT * FROM audit_events'),
    ]);
    const logs = h.logs.text();
    for (const key of keys) {
      expect(tables).not.toContain(key);
      expect(tables).not.toContain(key.slice(4));
      expect(logs).not.toContain(key);
      expect(logs).not.toContain(key.slice(4));
    }
    const digests = await h.sql<{ key_sha256: Buffer }>('SELECT key_sha256 FROM app_keys');
    expect(digests.length).toBe(keys.length);
    expect(digests.every((d) => d.key_sha256.length === 32)).toBe(true);
  });
});
