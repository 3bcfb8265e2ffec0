/**
 * The users API: create, read, change, disable, delete, list with a cursor, search by exact
 * phone or email, and a streamed bulk import (NDJSON and CSV) that is idempotent per sub and
 * reports bad lines. Phones are stored in E.164, emails with a lower-case domain, both unique
 * among enabled users; a disabled user signs in exactly like an unknown one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeRow, initiate, messagesFor, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

describe('users API', () => {
  let h: Harness;
  let responder: { authorization: string };
  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_DEFAULT_PHONE_COUNTRY: 'GB' } });
    responder = await operatorHeaders(h, 'rita', 'responder');
  });
  afterAll(async () => h?.close());

  const api = (method: Method, url: string, payload?: unknown, headers: Record<string, string> = h.adminHeaders) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  it('creates a user with a normalized phone and email, reads, changes and deletes it, audited without the values', async () => {
    const created = await api('POST', '/users', {
      sub: 'carol',
      phone: '07700 900123', // national, in the default country
      email: 'Carol.Jones@Example.COM',
      locale: 'pt-BR',
      metadata: { plan: 'team' },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({
      sub: 'carol',
      phone: '+447700900123',
      email: 'Carol.Jones@example.com',
      locale: 'pt-BR',
      metadata: { plan: 'team' },
      disabled: false,
    });
    expect((await api('GET', '/users/carol', undefined, responder)).json()).toMatchObject({ phone: '+447700900123' });

    const changed = await api('PATCH', '/users/carol', { phone: '+1 202 555 0147', locale: null });
    expect(changed.json()).toMatchObject({ phone: '+12025550147', locale: null, email: 'Carol.Jones@example.com' });

    const audit = JSON.stringify(
      await h.sql(
        "SELECT outcome, details FROM audit_events WHERE event_type = 'identity.admin.user_action' AND user_id = 'carol'",
      ),
    );
    expect(audit).toContain('created');
    expect(audit).not.toContain('7700900123');
    expect(audit).not.toContain('Carol.Jones');

    expect((await api('DELETE', '/users/carol')).statusCode).toBe(204);
    expect((await api('GET', '/users/carol')).json()).toMatchObject({ error: 'user_not_found' });
  });

  it('refuses impossible numbers, bad addresses and duplicates with a 4xx naming the field, and writes nothing', async () => {
    const cases: Array<[Record<string, unknown>, number, string, string?]> = [
      [{ sub: 'dave', phone: '12' }, 400, 'invalid_request', 'phone'],
      [{ sub: 'dave', phone: '+44 77' }, 400, 'invalid_request', 'phone'],
      [{ sub: 'dave', email: 'not-an-address' }, 400, 'invalid_request', 'email'],
      [{ sub: 'dave', locale: 'English please' }, 400, 'invalid_request', 'locale'],
      [{ sub: 'has space' }, 400, 'invalid_request', 'sub'],
      [{ sub: 'dave', phone: '+15555550100' }, 409, 'phone_taken', 'phone'], // test-user's
      [{ sub: 'dave', email: 'alice@EXAMPLE.com' }, 409, 'email_taken', 'email'],
      [{ sub: 'alice' }, 409, 'user_exists', 'sub'],
      [{ sub: 'dave', role: 'admin' }, 400, 'invalid_request'],
    ];
    for (const [body, status, error, field] of cases) {
      const res = await api('POST', '/users', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(status);
      expect(res.json()).toMatchObject({ error, ...(field ? { field } : {}) });
    }
    expect(await h.sql("SELECT count(*)::int AS n FROM users WHERE sub = 'dave'")).toEqual([{ n: 0 }]);
    // a viewer reads nothing personal, a responder changes nothing
    expect((await api('PATCH', '/users/alice', { locale: 'fr' }, responder)).statusCode).toBe(403);
  });

  it('lists with a cursor and finds a user by exact phone or email, however they are written', async () => {
    type Page = { users: Array<{ sub: string }>; next_cursor: string | null };
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await api('GET', `/users?limit=3${cursor ? `&cursor=${cursor}` : ''}`, undefined, responder);
      const page: Page = res.json<Page>();
      expect(page.users.length).toBeLessThanOrEqual(3);
      seen.push(...page.users.map((u) => u.sub));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(['alice', 'bob', 'test-user', 'email-only']));
    expect(new Set(seen).size).toBe(seen.length);

    const byPhone = await api('GET', `/users?phone=${encodeURIComponent('+1 (555) 555-0111')}`, undefined, responder);
    expect(byPhone.json().users.map((u: { sub: string }) => u.sub)).toEqual(['alice']);
    const byEmail = await api('GET', `/users?email=${encodeURIComponent('bob@EXAMPLE.org')}`, undefined, responder);
    expect(byEmail.json().users.map((u: { sub: string }) => u.sub)).toEqual(['bob']);
  });

  it('imports NDJSON and CSV as they stream, per line, idempotently, reporting bad lines', async () => {
    const ndjson = [
      JSON.stringify({ sub: 'imp-1', phone: '+447700900001', email: 'imp-1@example.com' }),
      '',
      JSON.stringify({ sub: 'imp-2', email: 'imp-2@example.com', locale: 'de' }),
      '{not json',
      JSON.stringify({ sub: 'imp-3', phone: '999' }),
    ].join('\n');
    const send = (body: string, type: string) =>
      h.admin.inject({
        method: 'POST',
        url: '/admin/api/v1/users/import',
        headers: { ...h.adminHeaders, 'content-type': type },
        payload: body,
      });
    const first = await send(ndjson, 'application/x-ndjson');
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ created: 2, updated: 0, unchanged: 0, failed: 2 });
    expect(first.json().errors).toEqual([
      { line: 4, error: 'invalid_request', message: 'not a JSON object' },
      expect.objectContaining({ line: 5, error: 'invalid_request', field: 'phone' }),
    ]);
    // the same file again changes nothing
    expect((await send(ndjson, 'application/x-ndjson')).json()).toMatchObject({ created: 0, updated: 0, unchanged: 2 });

    const csv =
      'sub,phone,email,locale\nimp-2,,,fr\nimp-4,07700 900004,imp-4@example.com,\nimp-5,,imp-1@example.com,\n';
    const second = await send(csv, 'text/csv');
    expect(second.json()).toMatchObject({ created: 1, updated: 1, failed: 1 });
    expect(second.json().errors).toEqual([expect.objectContaining({ line: 4, error: 'email_taken', field: 'email' })]);
    expect(await h.sql("SELECT sub, phone, locale FROM users WHERE sub IN ('imp-2', 'imp-4') ORDER BY sub")).toEqual([
      { sub: 'imp-2', phone: null, locale: 'fr' },
      { sub: 'imp-4', phone: '+447700900004', locale: null },
    ]);
    const wrongType = await send('{}', 'application/json');
    expect(wrongType.statusCode).toBe(415);
    expect(wrongType.json()).toMatchObject({ error: 'unsupported_media_type' });
  });

  it('treats a disabled user signing in exactly like an unknown one, and frees their number', async () => {
    const disabled = await api('PATCH', '/users/test-user-3', { disabled: true });
    expect(disabled.json()).toMatchObject({ disabled: true });
    const ids: string[] = [];
    for (const user of ['test-user-3', 'no-such-user-4711']) {
      const res = await initiate(h, 'otp', user);
      expect(res.statusCode).toBe(202);
      ids.push(res.json<{ challenge_id: string }>().challenge_id);
    }
    for (const id of ids) {
      const row = await waitFor('its delivery outcome', async () => {
        const r = await challengeRow(h, id);
        return r?.delivery_outcome ? r : undefined;
      });
      expect(row.delivery_outcome).toBe('no_recipient');
      expect(await messagesFor(h, id)).toHaveLength(0);
    }
    // another enabled user may now have the number; the disabled one cannot come back with it
    expect((await api('POST', '/users', { sub: 'heir', phone: '+15555550103' })).statusCode).toBe(201);
    const back = await api('PATCH', '/users/test-user-3', { disabled: false });
    expect(back.json()).toMatchObject({ error: 'phone_taken' });
  });
});
