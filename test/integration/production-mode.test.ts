/**
 * WARDEN_ENV=production fails closed: the entry points refuse to start on the provider sandbox,
 * provider callbacks accept no signature without credentials, SES events need their signature,
 * and the SES subscription's secret path never reaches a log line. Development (the embedded
 * stack, the tests) keeps the sandbox, and every entry point says at start which providers
 * are live.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildPublicApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import { assertStartable, productionProblems } from '../../src/config/production';
import { startWorker } from '../../src/worker/worker';
import { healthCheckWorkflow } from '../../src/workflows';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { spawnWorkerProcess } from '../helpers/workerProcess';

const run = promisify(execFile);
const LIVE = {
  TWILIO_ACCOUNT_SID: 'AC' + '1'.repeat(32),
  TWILIO_AUTH_TOKEN: 'twilio-auth-token',
  PLIVO_AUTH_ID: 'MAPLIVOAUTHID',
  PLIVO_AUTH_TOKEN: 'plivo-auth-token',
  SENDGRID_API_KEY: 'SG.live-key',
  SES_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  SES_SECRET_ACCESS_KEY: 'ses-secret',
  SLACK_BOT_TOKEN: 'xoxb-live',
  HCAPTCHA_SECRET: 'hcaptcha-secret',
  HCAPTCHA_SITE_KEY: 'hcaptcha-site-key',
};

describe('production mode', () => {
  let h: Harness;
  const snsToken = randomBytes(16).toString('hex');
  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { SES_SNS_TOKEN: snsToken } });
  });
  afterAll(async () => h?.close());

  it('names every reason a sandbox configuration may not run in production, and none for a live one', () => {
    const { WARDEN_ENV: _dev, ...base } = h.env;
    const sandboxed = loadConfig(base);
    expect(sandboxed.env).toBe('production');
    const problems = productionProblems(sandboxed).join('\n');
    for (const provider of ['twilio', 'plivo', 'sendgrid', 'ses', 'slack', 'hcaptcha'])
      expect(problems).toContain(`${provider} has no credentials`);
    expect(problems).toContain('SES_SNS_TOKEN is set without SES_SNS_SIGNING_CERT');
    expect(() => assertStartable(sandboxed)).toThrow(/WARDEN_ENV=production refuses to start/);

    const cert = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----';
    const live = loadConfig({ ...base, ...LIVE, SES_SNS_SIGNING_CERT: cert });
    expect(productionProblems(live)).toEqual([]);
    expect(
      productionProblems(loadConfig({ ...base, ...LIVE, SES_SNS_SIGNING_CERT: cert, WARDEN_CODEC_AUTH: 'none' })),
    ).toEqual(['WARDEN_CODEC_AUTH=none: the codec must require its token']);
    // development runs on the sandbox on purpose
    expect(() => assertStartable(loadConfig(h.env))).not.toThrow();
  });

  it('keeps the API and the worker from starting on the sandbox, before they touch anything', async () => {
    const { WARDEN_ENV: _dev, ...env } = h.env;
    for (const entry of ['src/api/main.ts', 'src/worker/main.ts']) {
      const failed = await run(process.execPath, ['--import', 'tsx', path.resolve(entry)], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
        timeout: 60_000,
      }).then(
        () => undefined,
        (err: { code?: number; stderr?: string }) => err,
      );
      expect(failed, entry).toBeDefined();
      expect(failed!.code, entry).toBe(1);
      expect(failed!.stderr).toContain('WARDEN_ENV=production refuses to start');
      expect(failed!.stderr).toContain('twilio has no credentials');
      expect(failed!.stderr).not.toContain('    at '); // a list of causes, not a stack trace
    }
  });

  it('says at start which providers are live', async () => {
    const worker = await spawnWorkerProcess(h);
    try {
      const line = worker.output.find((l) => l.includes('"providers"'));
      expect(line).toBeDefined();
      const logged = JSON.parse(line!) as { env: string; providers: Record<string, string> };
      expect(logged.env).toBe('development');
      expect(logged.providers).toMatchObject({ twilio: 'sandbox', sendgrid: 'sandbox', slack: 'sandbox' });
    } finally {
      await worker.stop();
    }
  });

  it('accepts no provider callback without credentials, and no unsigned SES event, in production', async () => {
    const production = loadConfig({ ...h.env, WARDEN_ENV: 'production' });
    const app = await buildPublicApp({ ...h.runtime, config: production });
    try {
      // signed with the sandbox's well-known token: accepted in development only
      for (const provider of ['twilio', 'plivo']) {
        const res = await app.inject({
          method: 'POST',
          url: `/callbacks/v1/${provider}/status`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'MessageStatus=delivered&MessageSid=SM1&Status=delivered&MessageUUID=1',
        });
        expect(res.statusCode, provider).toBe(503);
        expect(res.json()).toMatchObject({ error: 'not_configured' });
      }
      const ses = await app.inject({
        method: 'POST',
        url: `/callbacks/v1/ses/${snsToken}`,
        headers: { 'content-type': 'text/plain' },
        payload: JSON.stringify({ Type: 'Notification', Message: '{}' }),
      });
      expect(ses.statusCode).toBe(503);
      expect(ses.json()).toMatchObject({ error: 'not_configured' });
    } finally {
      await app.close();
    }
    // the development app still takes the sandbox's callbacks (delivery-callbacks.test.ts);
    // and whatever the mode, the subscription's secret path is not in any log line
    const dev = await h.public.inject({
      method: 'POST',
      url: `/callbacks/v1/ses/${snsToken}`,
      headers: { 'content-type': 'text/plain' },
      payload: 'not json',
    });
    expect(dev.statusCode).toBe(400);
    const logs = h.logs.text();
    expect(logs).toContain('/callbacks/v1/ses/[REDACTED]');
    expect(logs).not.toContain(snsToken);
  });

  it("has a production worker refuse input that Warden's codec did not encrypt", async () => {
    const production = loadConfig({ ...h.env, WARDEN_ENV: 'production' });
    const taskQueue = `production-${randomBytes(4).toString('hex')}`;
    const worker = await startWorker(
      { ...h.runtime, config: production },
      { workflowBundlePath: inject('workflowBundlePath'), taskQueue },
    );
    try {
      // whoever reaches Temporal without the payload key (its CLI, a script) writes plain JSON
      const plain = new Client({ connection: h.runtime.temporal.connection, namespace: h.config.temporal.namespace });
      const forged = await plain.workflow.start('healthCheckWorkflow', {
        taskQueue,
        workflowId: `forged-${taskQueue}`,
        args: [{ note: 'written without the key' }],
      });
      const failure = await waitFor('the refused workflow task', async () => {
        const history = await forged.fetchHistory();
        return (
          history.events?.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes ??
          undefined
        );
      });
      expect(failure.failure?.message).toMatch(/not encrypted with Warden's payload keyring/);
      expect((await forged.describe()).status.name).toBe('RUNNING');
      await forged.terminate('test done');

      // the same workflow from Warden's own client runs
      const encrypted = await h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
        taskQueue,
        workflowId: `encrypted-${taskQueue}`,
      });
      expect(encrypted).toBeDefined();
    } finally {
      await worker.shutdown();
    }
  });
});
