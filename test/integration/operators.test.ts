/**
 * Operators on the admin API: named credentials with a role, each route's least role, the
 * actor taken from the credential (never from the body), and tokens that are shown once,
 * stored as digests, revocable, and die with a disabled operator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

describe('operators and roles', () => {
  let h: Harness;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const call = (token: string | undefined, method: Method, url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const asBootstrap = (method: Method, url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: h.adminHeaders,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  beforeAll(async () => {
    h = await startHarness();
    for (const [name, role] of [
      ['vera', 'viewer'],
      ['rhea', 'responder'],
      ['ada', 'admin'],
    ] as const) {
      const created = await asBootstrap('POST', '/operators', { name, role });
      expect(created.statusCode).toBe(201);
      ids[name] = created.json<{ id: string }>().id;
      const issued = await asBootstrap('POST', `/operators/${ids[name]}/tokens`, { label: 'laptop' });
      expect(issued.statusCode).toBe(201);
      expect(issued.headers['cache-control']).toBe('no-store');
      tokens[name] = issued.json<{ token: string }>().token;
    }
  });
  afterAll(async () => h?.close());

  it('names the caller and its role', async () => {
    const me = await call(tokens.rhea, 'GET', '/whoami');
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({ id: ids.rhea, name: 'rhea', role: 'responder' });
    expect((await asBootstrap('GET', '/whoami')).json()).toMatchObject({ name: 'admin-api', role: 'admin' });
    const nobody = await call('wop_' + 'x'.repeat(43), 'GET', '/whoami');
    expect(nobody.statusCode).toBe(401);
    expect(nobody.json()).toMatchObject({ error: 'unauthorized' });
  });

  it('keeps only a digest of each token', async () => {
    const rows = await h.sql<{ token_sha256: Buffer; hint: string }>('SELECT token_sha256, hint FROM operator_tokens');
    expect(rows).toHaveLength(3);
    const stored = JSON.stringify(await h.sql('SELECT * FROM operator_tokens'));
    const audit = JSON.stringify(await h.sql('SELECT * FROM audit_events'));
    for (const token of Object.values(tokens)) {
      expect(stored).not.toContain(token);
      expect(audit).not.toContain(token);
      expect(h.logs.text()).not.toContain(token);
      expect(rows.some((r) => token.startsWith(r.hint))).toBe(true);
    }
  });

  it('gives each role what it may do and refuses the rest with 403, audited', async () => {
    // a viewer reads, and may not open an incident
    expect((await call(tokens.vera, 'GET', '/incidents')).statusCode).toBe(200);
    const open = { type: 'provider_outage', severity: 'P3', title: 'roles test' };
    const refused = await call(tokens.vera, 'POST', '/incidents', open);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'forbidden', needed_role: 'responder' });

    // a responder may not change settings, rotate keys, block addresses or manage operators
    for (const [method, url, body] of [
      ['PUT', '/ratelimits', {}],
      ['POST', '/keys/rotate', { reason: 'test' }],
      ['POST', '/blocklist/ip', { ip: '203.0.113.7', reason: 'test' }],
      ['POST', '/operators', { name: 'eve', role: 'admin' }],
      ['GET', '/operators', undefined],
    ] as const) {
      const res = await call(tokens.rhea, method, url, body);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json()).toMatchObject({ error: 'forbidden', needed_role: 'admin' });
    }
    expect(await h.sql('SELECT count(*)::int AS n FROM operators')).toEqual([{ n: 3 }]);
    expect(await h.sql("SELECT count(*)::int AS n FROM ip_blocklist WHERE cidr = '203.0.113.7/32'")).toEqual([
      { n: 0 },
    ]);

    const rows = await h.sql<{ details: Record<string, unknown> }>(
      "SELECT details FROM audit_events WHERE event_type = 'identity.access.refused' ORDER BY id",
    );
    expect(rows[0]!.details).toMatchObject({ actor: 'vera', role: 'viewer', needed: 'responder', method: 'POST' });
    expect(rows.filter((r) => r.details.actor === 'rhea')).toHaveLength(5);

    // an admin may
    const blocked = await call(tokens.ada, 'POST', '/blocklist/ip', { ip: '203.0.113.7', reason: 'test' });
    expect(blocked.statusCode).toBe(201);
    expect(await h.sql("SELECT created_by FROM ip_blocklist WHERE cidr = '203.0.113.7/32'")).toEqual([
      { created_by: 'ada' },
    ]);
  });

  it('takes the actor from the credential, not from the body', async () => {
    const open = await call(tokens.rhea, 'POST', '/incidents', {
      type: 'provider_outage',
      severity: 'P3',
      title: 'actor test',
      opened_by: 'mallory',
    });
    expect(open.statusCode).toBe(201);
    const { id } = open.json<{ id: string }>();
    const ack = await call(tokens.rhea, 'POST', `/incidents/${id}/ack`, { by: 'mallory', note: 'on it' });
    expect(ack.statusCode).toBe(200);
    const state = ack.json<{ openedBy: string; owner: string; timeline: Array<{ by?: string; kind: string }> }>();
    expect(state).toMatchObject({ openedBy: 'rhea', owner: 'rhea' });
    expect(JSON.stringify(state.timeline)).not.toContain('mallory');
    expect(state.timeline.find((e) => e.kind === 'acknowledged')).toMatchObject({ by: 'rhea' });

    // the Temporal UI finds the incident by its id and by who acted on it
    const escalated = await call(tokens.ada, 'POST', `/incidents/${id}/escalate`, { reason: 'more hands' });
    expect(escalated.statusCode).toBe(200);
    const attributes = await waitFor('the operators on the incident', async () => {
      const described = await h.runtime.temporal.client.workflow.getHandle(id).describe();
      const pairs = Object.fromEntries(described.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]));
      return JSON.stringify(pairs.Operators) === '["rhea","ada"]' ? pairs : undefined;
    });
    expect(attributes).toMatchObject({ IncidentId: id, Severity: 'P3', IncidentType: 'provider_outage' });
  });

  it('lets only an admin decide a runbook in advance', async () => {
    const start = (token: string) =>
      call(token, 'POST', '/runbooks/provider-outage', {
        severity: 'P2',
        approve: ['switch_route'],
        params: { channel: 'sms' },
      });
    const res = await start(tokens.rhea!);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'forbidden', needed_role: 'admin' });
    // (the runbook of the incident rhea opened above is hers; the refused start added none)
    expect(
      await h.sql("SELECT count(*)::int AS n FROM runbook_runs WHERE started_by = 'rhea' AND incident_id IS NULL"),
    ).toEqual([{ n: 0 }]);
  });

  it('keeps runbook step decisions to admins: a responder and a viewer get 403, the step still waits', async () => {
    // at P1 a destructive step waits; this run names nobody, so rotate_keys is the first to ask
    const started = await call(tokens.ada, 'POST', '/runbooks/compromised-token', { severity: 'P1' });
    expect(started.statusCode, started.body).toBe(201);
    const run = started.json<{ workflow_id: string }>().workflow_id;
    const rotateKeys = async (token: string) =>
      (await call(token, 'GET', `/runbooks/runs/${run}`))
        .json<{ steps?: Array<{ name: string; status: string }> }>()
        .steps?.find((s) => s.name === 'rotate_keys');
    await waitFor('rotate_keys to wait', async () =>
      (await rotateKeys(tokens.ada!))?.status === 'awaiting_approval' ? true : undefined,
    );

    for (const [who, needed] of [
      ['rhea', 'admin'],
      ['vera', 'admin'],
    ] as const) {
      for (const verb of ['approve', 'reject']) {
        const res = await call(tokens[who], 'POST', `/runbooks/runs/${run}/${verb}`, { step: 'rotate_keys' });
        expect(res.statusCode, `${who} ${verb}`).toBe(403);
        expect(res.json()).toMatchObject({ error: 'forbidden', needed_role: needed });
      }
    }
    // the viewer reads the run it may not steer; nothing was decided
    expect((await call(tokens.vera, 'GET', `/runbooks/runs/${run}`)).statusCode).toBe(200);
    const step = await rotateKeys(tokens.vera!);
    expect(step?.status).toBe('awaiting_approval');
    expect(await h.sql('SELECT id FROM key_rotations')).toEqual([]);
    const refused = await h.sql<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE event_type = 'identity.access.refused'
          AND details->>'route' = '/admin/api/v1/runbooks/runs/:id/reject' ORDER BY id`,
    );
    expect(refused.map((r) => r.details.actor)).toEqual(['rhea', 'vera']);

    // an admin decides
    const rejected = await call(tokens.ada, 'POST', `/runbooks/runs/${run}/reject`, { step: 'rotate_keys' });
    expect(rejected.statusCode, rejected.body).toBe(200);
    await waitFor('rotate_keys rejected', async () =>
      (await rotateKeys(tokens.ada!))?.status === 'rejected' ? true : undefined,
    );
  });

  it('keeps delivery route switches to admins; a viewer reads the routes but acts on nothing', async () => {
    const sms = async () =>
      (await call(tokens.vera, 'GET', '/delivery/routes/sms')).json<{ mode: string; updated_by: string | null }>();
    const before = await sms();
    expect(before.mode).toBe('auto');
    expect((await call(tokens.vera, 'GET', '/delivery/routes')).statusCode).toBe(200);

    for (const who of ['rhea', 'vera'] as const) {
      const res = await call(tokens[who], 'POST', '/delivery/routes/sms/switch', { to: 'backup', reason: 'roles' });
      expect(res.statusCode, who).toBe(403);
      expect(res.json()).toMatchObject({ error: 'forbidden', needed_role: 'admin' });
    }
    expect(await sms()).toMatchObject({ mode: 'auto', updated_by: before.updated_by });

    // a viewer may not act on an incident either: not acknowledge, note or escalate
    const opened = await call(tokens.rhea, 'POST', '/incidents', { type: 'other', severity: 'P3', title: 'viewer' });
    const { id } = opened.json<{ id: string }>();
    for (const [action, body] of [
      ['ack', {}],
      ['notes', { text: 'hello' }],
      ['escalate', { reason: 'curious' }],
    ] as const) {
      const res = await call(tokens.vera, 'POST', `/incidents/${id}/${action}`, body);
      expect(res.statusCode, action).toBe(403);
      expect(res.json()).toMatchObject({ error: 'forbidden', needed_role: 'responder' });
    }
    const incident = (await call(tokens.vera, 'GET', `/incidents/${id}`)).json<{
      acknowledgedAt?: string;
      timeline: Array<{ kind: string }>;
    }>();
    expect(incident.acknowledgedAt).toBeUndefined();
    expect(incident.timeline.map((e) => e.kind)).not.toContain('note');

    const switched = await call(tokens.ada, 'POST', '/delivery/routes/sms/switch', { to: 'backup', reason: 'roles' });
    expect(switched.statusCode, switched.body).toBe(200);
    expect(await sms()).toMatchObject({ mode: 'backup', updated_by: 'ada' });
    expect((await call(tokens.ada, 'POST', '/delivery/routes/sms/switch', { to: 'primary' })).statusCode).toBe(200);
  });

  it('revokes a token at once, and a disabled operator loses every token', async () => {
    const second = await asBootstrap('POST', `/operators/${ids.vera}/tokens`, { expires_in_days: 30 });
    const spare = second.json<{ token: string; info: { id: string; expires_at: string } }>();
    expect(spare.info.expires_at).not.toBeNull();
    expect((await call(spare.token, 'GET', '/whoami')).statusCode).toBe(200);

    const revoked = await asBootstrap('DELETE', `/operators/${ids.vera}/tokens/${spare.info.id}`);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ active: false });
    expect((await call(spare.token, 'GET', '/whoami')).statusCode).toBe(401);
    expect((await call(tokens.vera, 'GET', '/whoami')).statusCode).toBe(200);

    const listed = await asBootstrap('GET', `/operators/${ids.vera}/tokens`);
    const list = listed.json<{ tokens: Array<{ id: string; active: boolean; last_used_at: string | null }> }>().tokens;
    expect(list.map((t) => t.active)).toEqual([true, false]);
    expect(JSON.stringify(listed.json())).not.toContain(tokens.vera);

    expect((await call(tokens.ada, 'PATCH', `/operators/${ids.vera}`, { disabled: true })).statusCode).toBe(200);
    expect((await call(tokens.vera, 'GET', '/whoami')).statusCode).toBe(401);
    const reissue = await asBootstrap('POST', `/operators/${ids.vera}/tokens`, {});
    expect(reissue.statusCode).toBe(409);
    expect(reissue.json()).toMatchObject({ error: 'operator_disabled' });

    const changes = await h.sql<{ outcome: string; details: Record<string, unknown> }>(
      "SELECT outcome, details FROM audit_events WHERE event_type = 'identity.operators.changed' ORDER BY id",
    );
    expect(changes.map((c) => c.outcome)).toEqual([
      'created',
      'token_issued',
      'created',
      'token_issued',
      'created',
      'token_issued',
      'token_issued',
      'token_revoked',
      'updated',
    ]);
    expect(changes.at(-1)!.details).toMatchObject({ actor: 'ada', operator: 'vera', disabled: true });
  });

  it('answers bad operator input with a 4xx and a stable code', async () => {
    const cases: Array<[Method, string, unknown, number, string]> = [
      ['POST', '/operators', { name: 'Has Spaces', role: 'admin' }, 400, 'invalid_request'],
      ['POST', '/operators', { name: 'zed', role: 'root' }, 400, 'invalid_request'],
      ['POST', '/operators', { name: 'rhea', role: 'viewer' }, 409, 'operator_exists'],
      ['PATCH', '/operators/not-a-uuid', { role: 'viewer' }, 400, 'invalid_request'],
      ['PATCH', `/operators/${ids.rhea}`, {}, 400, 'invalid_request'],
      ['PATCH', '/operators/00000000-0000-0000-0000-000000000000', { role: 'viewer' }, 404, 'operator_not_found'],
      ['POST', `/operators/${ids.rhea}/tokens`, { expires_in_days: 0 }, 400, 'invalid_request'],
      [
        'DELETE',
        `/operators/${ids.rhea}/tokens/00000000-0000-0000-0000-000000000000`,
        undefined,
        404,
        'token_not_found',
      ],
    ];
    for (const [method, url, body, status, code] of cases) {
      const res = await asBootstrap(method, url, body);
      expect(res.statusCode, `${method} ${url} ${JSON.stringify(body)}`).toBe(status);
      expect(res.json()).toMatchObject({ error: code });
    }
  });
});
