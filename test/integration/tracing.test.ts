import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as otel from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { bundleWorkflowCode } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACING_WORKFLOW_MODULES } from '../../src/telemetry/tracing';
import { healthCheckWorkflow } from '../../src/workflows';
import { initiate, post, secretFor, waitFor, waitForStatus } from '../helpers/authClient';
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const LINK_PATH = '/browser/api/v1/identity/auth/magic-link/verify';

/** Everything a span carries that a trace backend would store and show. */
function spanText(span: ReadableSpan): string {
  return JSON.stringify({
    name: span.name,
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    status: span.status,
    links: span.links.map((l) => l.attributes),
    resource: span.resource.attributes,
  });
}

/**
 * Real flows with tracing on (in-memory exporter, workflow bundle built with the tracing
 * interceptors): API request -> client -> workflow -> activities in one trace, and no token,
 * code, phone number or email in any span.
 */
describe('OpenTelemetry traces', () => {
  let h: Harness;
  let scratch: string;
  const exporter = new InMemorySpanExporter();
  const spans = () => exporter.getFinishedSpans();

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-tracing-'));
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.resolve('src/workflows/index.ts'),
      workflowInterceptorModules: TRACING_WORKFLOW_MODULES,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never,
    });
    const bundle = path.join(scratch, 'bundle.js');
    writeFileSync(bundle, code);
    h = await startHarness({ spanExporter: exporter, workflowBundlePath: bundle });
    await raiseRateLimits(h);
  });
  afterAll(async () => {
    await h?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('follows a workflow started inside a span through the workflow to its activity', async () => {
    const tracer = h.runtime.tracing!.tracer;
    const workflowId = `health-${randomUUID()}`;
    const traceId = await tracer.startActiveSpan('synthetic-check', async (root) => {
      await h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
        taskQueue: h.config.temporal.taskQueue,
        workflowId,
      });
      root.end();
      return root.spanContext().traceId;
    });
    const trace = await waitFor('the activity span', async () => {
      const inTrace = spans().filter((s) => s.spanContext().traceId === traceId);
      return inTrace.some((s) => s.name === 'RunActivity:checkDatabaseHealth') &&
        inTrace.some((s) => s.name === 'RunWorkflow:healthCheckWorkflow')
        ? inTrace
        : undefined;
    });
    const byName = (name: string) => trace.find((s) => s.name === name)!;
    expect(byName('StartWorkflow:healthCheckWorkflow').parentSpanId).toBe(
      byName('synthetic-check').spanContext().spanId,
    );
    expect(byName('RunWorkflow:healthCheckWorkflow').parentSpanId).toBe(
      byName('StartWorkflow:healthCheckWorkflow').spanContext().spanId,
    );
    expect(byName('StartActivity:checkDatabaseHealth').parentSpanId).toBe(
      byName('RunWorkflow:healthCheckWorkflow').spanContext().spanId,
    );
    expect(byName('RunActivity:checkDatabaseHealth').parentSpanId).toBe(
      byName('StartActivity:checkDatabaseHealth').spanContext().spanId,
    );
    expect(byName('StartWorkflow:healthCheckWorkflow').attributes.temporalWorkflowId).toBe(workflowId);
  });

  it('traces an OTP flow from the HTTP request through the challenge workflow to its activities', async () => {
    const res = await initiate(h, 'otp', 'test-user');
    expect(res.statusCode).toBe(202);
    const { challenge_id } = res.json<{ challenge_id: string }>();
    const code = await secretFor(h, challenge_id);
    const verified = await post(h, '/otp/verify', { challenge_id, otp: code });
    expect(verified.statusCode).toBe(200);
    await waitForStatus(h, challenge_id, 'verified');

    const http = await waitFor('the initiate request span', async () =>
      spans().find((s) => s.name === 'POST /browser/api/v1/identity/auth/otp/initiate'),
    );
    expect(http.kind).toBe(otel.SpanKind.SERVER);
    expect(http.attributes).toMatchObject({
      'http.route': '/browser/api/v1/identity/auth/otp/initiate',
      'http.response.status_code': 202,
    });
    const traceId = http.spanContext().traceId;
    const trace = await waitFor('workflow and activity spans of the initiate trace', async () => {
      const inTrace = spans().filter((s) => s.spanContext().traceId === traceId);
      return inTrace.some((s) => s.name.startsWith('RunWorkflow:challengeWorkflow')) &&
        inTrace.some((s) => s.name.startsWith('RunActivity:'))
        ? inTrace
        : undefined;
    });
    // the route starts the workflow with update-with-start; its span is the HTTP span's child
    const start = trace.find(
      (s) => s.parentSpanId === http.spanContext().spanId && /^(UpdateWith)?StartWorkflow/.test(s.name),
    )!;
    expect(start.attributes.temporalWorkflowId).toBe(`challenge-${challenge_id}`);
    const run = trace.find((s) => s.name === 'RunWorkflow:challengeWorkflow')!;
    expect(run.parentSpanId).toBe(start.spanContext().spanId);
    const activities = trace.filter((s) => s.name.startsWith('RunActivity:')).map((s) => s.name);
    expect(activities.length).toBeGreaterThanOrEqual(2);

    // the verify request is a trace of its own, reaching the workflow's update handler
    const verify = spans().find((s) => s.name === 'POST /browser/api/v1/identity/auth/otp/verify')!;
    expect(
      spans().some(
        (s) =>
          s.spanContext().traceId === verify.spanContext().traceId && s.parentSpanId === verify.spanContext().spanId,
      ),
    ).toBe(true);
  });

  it('never puts a code, magic-link token, phone number, email or raw URL in any span', async () => {
    const secrets: string[] = [];
    for (const user of ['test-user', 'test-user-2']) {
      const otp = await initiate(h, 'otp', user);
      const otpId = otp.json<{ challenge_id: string }>().challenge_id;
      const code = await secretFor(h, otpId);
      secrets.push(code);
      const wrong = code === '000000' ? '111111' : '000000';
      expect((await post(h, '/otp/verify', { challenge_id: otpId, otp: wrong })).statusCode).toBe(401);
      expect((await post(h, '/otp/verify', { challenge_id: otpId, otp: code })).statusCode).toBe(200);

      const link = await initiate(h, 'magic-link', user);
      const linkId = link.json<{ challenge_id: string }>().challenge_id;
      const token = await secretFor(h, linkId);
      secrets.push(token);
      expect(
        (await h.public.inject({ method: 'GET', url: `${LINK_PATH}?challenge=${linkId}&token=${token}` })).statusCode,
      ).toBe(200);
      expect(
        (await h.public.inject({ method: 'POST', url: LINK_PATH, payload: { challenge: linkId, token } })).statusCode,
      ).toBe(200);
      await waitForStatus(h, linkId, 'verified');
    }
    const users = await h.sql<{ phone: string | null; email: string | null }>(
      "SELECT phone, email FROM users WHERE sub IN ('test-user', 'test-user-2')",
    );
    const pii = users.flatMap((u) => [u.phone, u.email]).filter((v): v is string => !!v);
    expect(pii.length).toBe(4);

    const all = await waitFor('spans of the magic-link GET', async () =>
      spans().some((s) => s.name === `GET ${LINK_PATH}`) ? spans() : undefined,
    );
    expect(all.length).toBeGreaterThan(20);
    const texts = all.map(spanText);
    for (const needle of [...secrets, ...pii]) {
      expect(
        texts.filter((t) => t.includes(needle)),
        needle.slice(0, 3),
      ).toEqual([]);
    }
    // nothing even had to be scrubbed: the spans are built from ids and route templates
    expect(texts.filter((t) => /\[(code|phone|email|hex)\]/.test(t))).toEqual([]);
    expect(texts.filter((t) => t.includes('token=') || t.includes('?challenge'))).toEqual([]);
  });
});
