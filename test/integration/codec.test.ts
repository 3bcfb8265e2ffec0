import { randomBytes, randomUUID } from 'node:crypto';
import type { Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import { EncryptionCodec, parsePayloadKeyring } from '../../src/temporal/codec';
import { SEARCH_ATTRIBUTES } from '../../src/shared/searchAttributes';
import { healthCheckWorkflow } from '../../src/workflows';
import { initiate, secretFor, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const UI_ORIGIN = 'http://localhost:8233';
const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');
// the process runs on k2 after a rotation; k1 stays in the ring for older histories
const KEYRING = JSON.stringify({ active: 'k2', keys: { k1, k2 } });
const CODEC_TOKEN = randomBytes(24).toString('base64url');
const ENCODE_TOKEN = randomBytes(24).toString('base64url');

type JsonPayload = { metadata: Record<string, string>; data: string };
const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('base64');
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
  data: b64(p.data),
});
const text = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');

describe('codec server (Temporal remote codec protocol on the admin port)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: {
        WARDEN_PAYLOAD_KEYS: KEYRING,
        WARDEN_CODEC_TOKEN: CODEC_TOKEN,
        WARDEN_CODEC_ENCODE_TOKEN: ENCODE_TOKEN,
        WARDEN_CODEC_CORS_ORIGINS: UI_ORIGIN,
      },
    });
  });
  afterAll(async () => h?.close());

  const uiHeaders = {
    origin: UI_ORIGIN,
    'content-type': 'application/json',
    'x-namespace': 'default',
    authorization: `Bearer ${CODEC_TOKEN}`,
  };
  const post = (operation: string, payloads: unknown[], headers: Record<string, string> = uiHeaders) =>
    h.admin.inject({ method: 'POST', url: `/codec/${operation}`, headers, payload: JSON.stringify({ payloads }) });

  it("decodes a real workflow's history payloads for a UI-style request", async () => {
    const workflowId = `health-${randomUUID()}`;
    await h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
      taskQueue: h.config.temporal.taskQueue,
      workflowId,
    });
    const history = await h.runtime.temporal.client.workflow.getHandle(workflowId).fetchHistory();
    const encoded = (history.events ?? []).flatMap((e) => [
      ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
      ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []),
    ]);
    expect(encoded.length).toBe(2);
    for (const p of encoded) expect(Buffer.from(p.metadata!.encoding!).toString()).toBe('binary/encrypted');

    const res = await post(
      'decode',
      encoded.map((p) => toJson(p as Payload)),
    );
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    const decoded = res.json<{ payloads: JsonPayload[] }>().payloads;
    expect(decoded).toHaveLength(2);
    for (const p of decoded) {
      expect(text(p.metadata.encoding)).toBe('json/plain');
      expect(JSON.parse(text(p.data))).toMatchObject({ ok: true, pool: { max: 25 } });
    }
  });

  it('encodes with the active key and decodes its own output', async () => {
    const plain = {
      metadata: { encoding: b64(Buffer.from('json/plain')) },
      data: b64(Buffer.from('{"note":"from the UI"}')),
    };
    const encoder = { ...uiHeaders, authorization: `Bearer ${ENCODE_TOKEN}` };
    const encoded = (await post('encode', [plain], encoder)).json<{ payloads: JsonPayload[] }>().payloads[0]!;
    expect(text(encoded.metadata.encoding)).toBe('binary/encrypted');
    expect(text(encoded.metadata['encryption-key-id'])).toBe('k2');
    expect(text(encoded.data)).not.toContain('from the UI');
    const decoded = (await post('decode', [encoded])).json<{ payloads: JsonPayload[] }>().payloads[0]!;
    expect(text(decoded.data)).toBe('{"note":"from the UI"}');
  });

  it('decodes payloads written under an older key of the ring, and refuses a key it does not hold', async () => {
    const plain: Payload = {
      metadata: { encoding: Buffer.from('json/plain') },
      data: Buffer.from('"before the rotation"'),
    };
    const [old] = await new EncryptionCodec(parsePayloadKeyring(JSON.stringify({ active: 'k1', keys: { k1 } }))).encode(
      [plain],
    );
    const res = await post('decode', [toJson(old!)]);
    expect(res.statusCode).toBe(200);
    expect(text(res.json<{ payloads: JsonPayload[] }>().payloads[0]!.data)).toBe('"before the rotation"');

    const [foreign] = await new EncryptionCodec(
      parsePayloadKeyring(JSON.stringify({ active: 'k9', keys: { k9: randomBytes(32).toString('base64') } })),
    ).encode([plain]);
    const refused = await post('decode', [toJson(foreign!)]);
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ error: 'decode_failed' });

    const tampered = toJson(old!);
    tampered.data = b64(Buffer.from(tampered.data, 'base64').map((byte, i) => (i === 20 ? byte ^ 1 : byte)));
    expect((await post('decode', [tampered])).json()).toMatchObject({ error: 'decode_failed' });
  });

  it('answers 401 without the codec token, with a forged one, and with the admin token', async () => {
    const payloads = [{ metadata: {}, data: '' }];
    const { authorization: _drop, ...anonymous } = uiHeaders;
    const missing = await post('decode', payloads, anonymous);
    expect(missing.statusCode).toBe(401);
    expect(missing.json()).toMatchObject({ error: 'unauthorized' });
    expect(missing.headers['www-authenticate']).toContain('warden-codec');
    // the browser must see the 401, not a CORS failure
    expect(missing.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    expect(
      (await post('decode', payloads, { ...uiHeaders, authorization: 'Bearer forged-token-forged-token' })).statusCode,
    ).toBe(401);
    expect(
      (await post('encode', payloads, { ...uiHeaders, authorization: h.adminHeaders.authorization })).statusCode,
    ).toBe(401);
    // the UI's decode token cannot encode, and the encode token cannot read
    expect((await post('encode', payloads)).statusCode).toBe(401);
    const reader = await post('decode', payloads, { ...uiHeaders, authorization: `Bearer ${ENCODE_TOKEN}` });
    expect(reader.statusCode).toBe(401);
    expect(reader.headers['www-authenticate']).toContain('warden-codec');
  });

  it('answers the CORS preflight for the UI origin only', async () => {
    const preflight = (origin: string) =>
      h.admin.inject({
        method: 'OPTIONS',
        url: '/codec/decode',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,x-namespace,authorization',
        },
      });
    const ok = await preflight(UI_ORIGIN);
    expect(ok.statusCode).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    expect(String(ok.headers['access-control-allow-methods'])).toContain('POST');
    expect(String(ok.headers['access-control-allow-headers']).toLowerCase()).toContain('x-namespace');
    expect(String(ok.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');
    const evil = await preflight('https://evil.example');
    expect(evil.statusCode).toBe(403);
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('rejects malformed requests with a 400 and a stable code', async () => {
    const wrongNamespace = await post('decode', [], { ...uiHeaders, 'x-namespace': 'someone-else' });
    expect(wrongNamespace.json()).toMatchObject({ error: 'unknown_namespace' });
    const notBase64 = await post('decode', [{ metadata: { encoding: 'not base64!' }, data: '' }]);
    expect(notBase64.statusCode).toBe(400);
    expect(notBase64.json()).toMatchObject({ error: 'invalid_request' });
    const noPayloads = await h.admin.inject({
      method: 'POST',
      url: '/codec/decode',
      headers: uiHeaders,
      payload: '{"nope":1}',
    });
    expect(noPayloads.statusCode).toBe(400);
    expect(noPayloads.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('runs without a token only on a loopback host (the dev stack), never on a public bind', async () => {
    expect(() => loadConfig({ ...h.env, WARDEN_CODEC_AUTH: 'none', WARDEN_HOST: '0.0.0.0' })).toThrow(/loopback/);
    const config = loadConfig({ ...h.env, WARDEN_CODEC_AUTH: 'none', WARDEN_HOST: '127.0.0.1' });
    const app = await buildAdminApp({ ...h.runtime, config });
    try {
      const { authorization: _drop, ...anonymous } = uiHeaders;
      const plain = { metadata: { encoding: b64(Buffer.from('json/plain')) }, data: b64(Buffer.from('1')) };
      const res = await app.inject({
        method: 'POST',
        url: '/codec/encode',
        headers: anonymous,
        payload: JSON.stringify({ payloads: [plain] }),
      });
      expect(res.statusCode).toBe(200);
      // a page whose name re-resolves to 127.0.0.1 (DNS rebinding) sends its own name as Host
      for (const host of ['rebind.attacker.example:9090', 'rebind.attacker.example', '10.0.0.5:9090']) {
        const rebound = await app.inject({
          method: 'POST',
          url: '/codec/decode',
          headers: { ...anonymous, host },
          payload: JSON.stringify({ payloads: [plain] }),
        });
        expect(rebound.statusCode, host).toBe(403);
        expect(rebound.json()).toMatchObject({ error: 'loopback_only' });
      }
    } finally {
      await app.close();
    }
  });

  it('keeps PII out of search attributes: the registered ones and every value set on real workflows', async () => {
    const namespace = h.config.temporal.namespace;
    const registered = await h.runtime.temporal.connection.operatorService.listSearchAttributes({ namespace });
    const custom = new Set(Object.keys(registered.customAttributes ?? {}));
    for (const key of SEARCH_ATTRIBUTES) expect(custom, key.name).toContain(key.name);

    // real workflows: an OTP challenge (its code read from the outbox), a health check, and an
    // incident whose responder typed an email address and an IP into it
    const started = await initiate(h, 'otp', 'test-user');
    const challengeId = started.json<{ challenge_id: string }>().challenge_id;
    const code = await secretFor(h, challengeId);
    await h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `health-${randomUUID()}`,
    });
    const opened = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/incidents',
      headers: h.adminHeaders,
      payload: {
        type: 'compromised_token',
        severity: 'P1',
        title: 'Codes of test-user@example.com seen in a support ticket',
        affected: { users: ['test-user'], ips: ['203.0.113.7'] },
      },
    });
    expect(opened.statusCode).toBe(201);
    const incidentId = opened.json<{ id: string }>().id;

    const executions = await waitFor('the three workflows in visibility', async () => {
      const found = [];
      for await (const wf of h.runtime.temporal.client.workflow.list({
        query: `TaskQueue = '${h.config.temporal.taskQueue}'`,
      }))
        found.push(wf);
      const incident = found.find((wf) => wf.workflowId === incidentId);
      const tagged = incident?.typedSearchAttributes.getAll().some((p) => p.key.name === 'IncidentType');
      return found.some((wf) => wf.workflowId === `challenge-${challengeId}`) &&
        found.some((wf) => wf.type === 'healthCheckWorkflow') &&
        tagged
        ? found
        : undefined;
    });
    const values: string[] = [];
    for (const wf of executions) {
      for (const { key, value } of wf.typedSearchAttributes.getAll()) {
        if (!custom.has(key.name)) continue;
        expect(
          SEARCH_ATTRIBUTES.map((k) => k.name),
          `${wf.type} sets ${key.name}`,
        ).toContain(key.name);
        values.push(JSON.stringify(value));
      }
    }
    const users = await h.sql<{ sub: string; phone: string | null; email: string | null }>(
      'SELECT sub, phone, email FROM users',
    );
    const pii = users.flatMap((u) => [u.phone, u.email]).filter((v): v is string => !!v);
    const text = values.join('\n');
    // the incident's keywords are there (its id, and who opened it), and nothing else
    expect(text).toContain('compromised_token');
    expect(text).toContain('P1');
    expect(text).toContain(incidentId);
    expect(text).toContain('["admin-api"]');
    for (const needle of [...pii, code, '203.0.113.7', 'support ticket']) expect(text).not.toContain(needle);
    expect(text).not.toMatch(/@|\+\d{8,}|\b\d{6}\b/);
  });

  it("renders an incident's and its runbook's queries readably through the codec, and only through it", async () => {
    const opened = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/incidents',
      headers: h.adminHeaders,
      payload: { type: 'compromised_token', severity: 'P2', title: 'query rendering drill' },
    });
    const incidentId = opened.json<{ id: string }>().id;
    const namespace = h.config.temporal.namespace;
    const queryRaw = (workflowId: string, queryType: string) =>
      waitFor(`${queryType} of ${workflowId}`, async () => {
        try {
          const res = await h.runtime.temporal.connection.workflowService.queryWorkflow({
            namespace,
            execution: { workflowId },
            query: { queryType },
          });
          return res.queryResult?.payloads?.[0];
        } catch {
          return undefined; // not started yet
        }
      });

    for (const [workflowId, queryType, expected] of [
      [incidentId, 'incidentState', 'query rendering drill'],
      [`${incidentId}-runbook`, 'runbookState', 'compromised-token'],
    ] as const) {
      const raw = await queryRaw(workflowId, queryType);
      // what the Temporal UI receives is ciphertext...
      expect(Buffer.from(raw.metadata!.encoding!).toString()).toBe('binary/encrypted');
      expect(Buffer.from(raw.data!).toString('utf8')).not.toContain(expected);
      // ...which the codec endpoint, given the UI's decode token, turns back into the state
      const res = await post('decode', [toJson(raw)]);
      expect(res.statusCode).toBe(200);
      const decoded = res.json<{ payloads: JsonPayload[] }>().payloads[0]!;
      expect(text(decoded.metadata.encoding)).toBe('json/plain');
      expect(text(decoded.data)).toContain(expected);
    }
  });
});
