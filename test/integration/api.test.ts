import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness';

describe('API skeleton', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, listen: true });
  });
  afterAll(async () => h?.close());

  it('answers /livez and /readyz when Postgres and Temporal answer', async () => {
    expect((await h.admin.inject({ url: '/livez' })).json()).toEqual({ status: 'live' });
    const ready = await h.admin.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', temporal: 'ok' } });
  });

  it('requires the admin bearer token under /admin/api/', async () => {
    const missing = await h.admin.inject({ url: '/admin/api/v1/anything' });
    expect(missing.statusCode).toBe(401);
    expect(missing.json()).toMatchObject({ error: 'unauthorized' });
    const forged = await h.admin.inject({
      url: '/admin/api/v1/anything',
      headers: { authorization: 'Bearer not-the-token-at-all' },
    });
    expect(forged.statusCode).toBe(401);
    const authorised = await h.admin.inject({ url: '/admin/api/v1/anything', headers: h.adminHeaders });
    expect(authorised.statusCode).toBe(404);
    expect(authorised.json()).toMatchObject({ error: 'not_found' });
  });

  it('answers malformed JSON with a 400 JSON error, not a 500', async () => {
    const res = await h.admin.inject({
      method: 'POST',
      url: '/livez',
      headers: { 'content-type': 'application/json' },
      payload: '{"broken":',
    });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(res.json()).toHaveProperty('error');
  });

  it('serves Prometheus metrics on the metrics port, with request latency by route template', async () => {
    await fetch(`${h.servers!.urls.admin}/livez`);
    const res = await fetch(`${h.servers!.urls.metrics}/metrics`);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toMatch(
      /warden_http_request_duration_seconds_count\{[^}]*server="admin",method="GET",route="\/livez",status="200"\} [1-9]/,
    );
    expect(body).toContain('process_cpu_user_seconds_total');
    expect(body).toMatch(/warden_db_connections\{(?=[^}]*state="max")[^}]*\} 25/);
  });

  it('logs requests with the magic-link token redacted from the URL', async () => {
    await h.public.inject({
      url: '/browser/api/v1/identity/auth/magic-link/verify?challenge=abc&token=SECRETTOKENVALUE',
    });
    const text = h.logs.text();
    expect(text).toContain('token=[REDACTED]');
    expect(text).not.toContain('SECRETTOKENVALUE');
  });
});
