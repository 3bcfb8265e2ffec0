/**
 * The recovery validation checklist with live providers (docs/canary.md#the-recovery-checklist):
 * the worker sees live SMS and email credentials, so there is no outbox to read codes and links
 * from, and every functional item that needs one runs through the delivery canary instead: one
 * run per channel, whose inbound webhook submits a wrong code (a tampered link token) before the
 * right one and looks for the secret it received everywhere it must not be. The incident then
 * closes without `force`.
 *
 * The providers' SDKs still talk to the sandbox (the runtime's clients were built from the
 * sandbox configuration), which hands each message back through the providers' inbound
 * webhooks, as a real phone number and mailbox would. Nothing here times anything.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { linkFrom } from '../../src/activities/checklistHttp';
import { ensureCanarySchedule } from '../../src/canary/schedule';
import { freePort } from '../../src/dev/process';
import { canaryScheduleId } from '../../src/shared/canary';
import type { IncidentState } from '../../src/shared/incidents';
import { startWorker, type WorkerHandle } from '../../src/worker/worker';
import { messages, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const CANARY = 'canary-operator';
const PHONE = '+15550107711';
const EMAIL = 'canary@ops.example';

describe('recovery validation checklist with live providers', () => {
  let h: Harness;
  let worker: WorkerHandle | undefined;

  beforeAll(async () => {
    h = await startHarness({
      listen: true,
      // the worker is this file's own: it runs with live provider credentials
      worker: false,
      env: {
        WARDEN_PUBLIC_PORT: String(await freePort()),
        WARDEN_CANARY_USER: CANARY,
        // the schedule's own hour would not come during the test: the checklist starts its runs
        WARDEN_CANARY_INTERVAL: '1h',
        WARDEN_CANARY_TIMEOUT_MS: '30000',
        SENDGRID_INBOUND_TOKEN: randomBytes(16).toString('hex'),
        // the p95 targets are judged in the benchmark, not on a loaded CI machine
        WARDEN_P95_GENERATION_MS: '60000',
        WARDEN_P95_VALIDATION_MS: '60000',
        WARDEN_P95_PROVIDER_MS: '60000',
      },
    });
    await h.sql('INSERT INTO users (sub, phone, email) VALUES ($1, $2, $3)', [CANARY, PHONE, EMAIL]);
    // the canary's phone and mailbox answer through the inbound webhooks (the sandbox's, registered here)
    await ensureCanarySchedule(h.runtime);
    const p = h.config.providers;
    const live = {
      ...h.config,
      providers: {
        ...p,
        twilio: { ...p.twilio, sandbox: false },
        plivo: { ...p.plivo, sandbox: false },
        sendgrid: { ...p.sendgrid, sandbox: false },
        ses: { ...p.ses, sandbox: false },
      },
    };
    worker = await startWorker({ ...h.runtime, config: live }, { workflowBundlePath: inject('workflowBundlePath') });
  });
  afterAll(async () => {
    await worker?.shutdown();
    await h?.runtime.temporal.client.schedule
      .getHandle(canaryScheduleId(h.config.temporal.taskQueue))
      .delete()
      .catch(() => {});
    await h?.close();
  });

  const api = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: Record<string, unknown>) =>
    h.admin.inject({ method, url: `/admin/api/v1${url}`, headers: h.adminHeaders, ...(payload ? { payload } : {}) });

  it(
    'runs every functional item through the canary, and the incident closes without force',
    { timeout: 240_000 },
    async () => {
      // an expired challenge to prove expired tokens are refused: a 1-second OTP, then the default again
      expect((await api('PUT', '/auth/settings', { otp_ttl_seconds: 1 })).statusCode).toBe(200);
      const short = await h.public.inject({
        method: 'POST',
        url: '/browser/api/v1/identity/auth/otp/initiate',
        payload: { user_id: 'alice' },
      });
      expect(short.statusCode).toBe(202);
      expect((await api('PUT', '/auth/settings', { otp_ttl_seconds: 300 })).statusCode).toBe(200);
      await waitFor('an expired challenge', async () =>
        (await h.sql("SELECT 1 FROM auth_challenges WHERE status = 'expired'")).length ? true : undefined,
      );

      const opened = await api('POST', '/incidents', {
        type: 'other',
        severity: 'P3',
        title: 'sign-ins failing after a deploy',
      });
      expect(opened.statusCode).toBe(201);
      const id = opened.json<{ id: string }>().id;
      const checklist = async () =>
        (await api('GET', `/incidents/${id}/checklist`)).json<{
          checklist: IncidentState['checklist'];
          running: boolean;
        }>();
      const outboxBefore = (await messages(h)).length;
      const started = await api('POST', `/incidents/${id}/checklist/run`, { by: 'omar' });
      expect([200, 202]).toContain(started.statusCode);
      const items = (
        await waitFor(
          'the checklist run',
          async () => {
            const c = await checklist();
            return !c.running && c.checklist.filter((i) => i.automated).every((i) => i.status !== 'pending')
              ? c
              : undefined;
          },
          200_000,
        )
      ).checklist;
      const item = (itemId: string) => items.find((i) => i.id === itemId)!;

      // every automated item passed; the four that need a code or a link, through the canary
      for (const i of items.filter((x) => x.automated))
        expect(i.status, `${i.id}: ${i.detail}`).toMatch(/^(passed|not_applicable)$/);
      const runs = await h.sql<{
        workflow_id: string;
        channel: string;
        status: string;
        checks: boolean;
        challenge_id: string;
        detail: string;
      }>('SELECT * FROM canary_runs ORDER BY channel');
      // one run per channel for the whole checklist run, whatever the number of items it served
      expect(runs.map((r) => [r.channel, r.status, r.checks])).toEqual([
        ['email', 'success', true],
        ['sms', 'success', true],
      ]);
      const [email, sms] = runs as [(typeof runs)[number], (typeof runs)[number]];
      expect(item('sms_otp_generation').detail).toBe(
        `canary ${CANARY} (${sms.workflow_id}): the SMS code came back through the provider`,
      );
      expect(item('magic_link_generation').detail).toBe(
        `canary ${CANARY} (${email.workflow_id}): the magic link came back through the provider`,
      );
      expect(item('valid_token_validation').detail).toMatch(
        new RegExp(`^canary ${CANARY} \\(${sms.workflow_id}\\): verified in \\d+ ms end to end; canary`),
      );
      expect(item('invalid_token_rejection').detail).toBe(
        `refused: wrong code (canary ${CANARY} (${sms.workflow_id}): 401 invalid_otp, then the right code verified), ` +
          `tampered link token (canary ${CANARY} (${email.workflow_id}): 401 invalid_token, then the right link verified), ` +
          'unknown challenge, expired challenge',
      );
      expect(item('no_plaintext_tokens').detail).toMatch(
        /^the canary code not found in \d+ audit rows, 1 challenge rows, 1 canary runs, 2 workflow histories \(\d+ payloads, decoded\), \d+ log lines of this process, 1 metrics page\(s\) \(canary .*\); the canary link token not found in /,
      );
      // the wrong one was really tried on each channel, refused, and the right one verified
      for (const [run, refusal] of [
        [sms, 'invalid_otp'],
        [email, 'invalid_token'],
      ] as const) {
        const audit = await h.sql<{ outcome: string }>(
          "SELECT outcome FROM audit_events WHERE event_type = 'identity.auth.validation_attempt' AND challenge_id = $1",
          [run.challenge_id],
        );
        expect(audit.map((a) => a.outcome).sort()).toEqual([refusal, 'success']);
        const [challenge] = await h.sql<{ status: string }>('SELECT status FROM auth_challenges WHERE id = $1', [
          run.challenge_id,
        ]);
        expect(challenge!.status).toBe('verified');
      }
      // one message to each of the canary's phone and mailbox, and none to the synthetic test
      // users: with live providers nobody reads the outbox
      const outbox = await messages(h);
      const sent = outbox.slice(0, outbox.length - outboxBefore);
      expect(
        sent
          .filter((m) => m.to === PHONE || m.to === EMAIL)
          .map((m) => m.to)
          .sort(),
      ).toEqual([PHONE, EMAIL].sort());
      const synthetic = await h.sql<{ phone: string; email: string }>(
        "SELECT phone, email FROM users WHERE sub IN ('test-user', 'test-user-2', 'test-user-3')",
      );
      expect(synthetic).toHaveLength(3);
      const theirs = new Set(synthetic.flatMap((u) => [u.phone, u.email]));
      expect(sent.filter((m) => theirs.has(m.to))).toEqual([]);

      // the secrets the canary received are nowhere in the incident, its runs or the logs
      const code = /\b(\d{6})\b/.exec(sent.find((m) => m.to === PHONE)!.body)![1]!;
      const token = linkFrom(sent.find((m) => m.to === EMAIL)!.body)!.token;
      const incident = JSON.stringify((await api('GET', `/incidents/${id}`)).json());
      for (const text of [incident, JSON.stringify(runs), h.logs.text()]) {
        expect(text.includes(token)).toBe(false);
        expect(new RegExp(`(?<![0-9])${code}(?![0-9])`).test(text)).toBe(false);
      }

      // the responder's part, then resolution: no force, and the checklist gate let it through
      expect(
        (
          await api('POST', `/incidents/${id}/preventive-actions`, {
            by: 'omar',
            description: 'canary on every deploy',
            category: 'monitoring',
          })
        ).statusCode,
      ).toBe(200);
      for (const manual of ['user_notifications', 'grafana_dashboards'])
        expect(
          (await api('POST', `/incidents/${id}/checklist/${manual}`, { by: 'omar', passed: true, note: 'checked' }))
            .statusCode,
        ).toBe(200);
      const resolved = await api('POST', `/incidents/${id}/resolve`, { by: 'omar', resolution: 'deploy rolled back' });
      expect([200, 202], resolved.body).toContain(resolved.statusCode);
      const final = await waitFor(
        'the incident resolved',
        async () => {
          const s = (await api('GET', `/incidents/${id}`)).json<IncidentState>();
          return s.status === 'resolved' ? s : undefined;
        },
        200_000,
      );
      expect(final.forcedResolution).toBeUndefined();
      expect(final.timeline.map((e) => e.kind)).toContain('checklist_passed');
    },
  );
});
