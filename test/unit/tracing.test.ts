import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createTracing, scrub } from '../../src/telemetry/tracing';

describe('tracing setup', () => {
  it('is off, and builds nothing, without an OTLP endpoint', () => {
    expect(createTracing({ tracing: { serviceName: 'warden' } })).toBeUndefined();
  });

  it('scrubs emails, phone numbers, 6-digit codes and long hex tokens, and leaves ids alone', () => {
    expect(scrub('to +15555550100 / +44 20 7946 0958, mail test-user@example.com, code 123456')).toBe(
      'to [phone] / [phone], mail [email], code [code]',
    );
    expect(scrub(`token ${'ab12'.repeat(10)}`)).toBe('token [hex]');
    for (const id of [
      'challenge-0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b',
      'INC-2026-01-15-03',
      'RunActivity:deliverChallenge',
      '@temporalio/worker@1.24.0',
    ]) {
      expect(scrub(id)).toBe(id);
    }
  });

  it('redacts attributes, exception events and status messages before any exporter sees them', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing({ tracing: { serviceName: 'warden-test' } }, { exporter })!;
    const span = tracing.tracer.startSpan('send', { attributes: { 'provider.to': '+15555550100' } });
    // what the workflow interceptors attach: workflowInfo, objects (memo) included
    span.setAttributes({
      memo: { phone: '+15555550100' },
      currentBuildId: `@temporalio/worker@1.24.0+${'ab'.repeat(32)}`,
    } as never);
    span.recordException(new Error('invalid recipient test-user@example.com'));
    span.setStatus({ code: 2, message: 'code 654321 rejected' });
    span.end();
    // (an in-memory exporter forgets its spans on shutdown: read them first)
    const [exported] = exporter.getFinishedSpans();
    await tracing.shutdown();
    expect(exported!.attributes['provider.to']).toBe('[phone]');
    expect(exported!.attributes.memo).toBeUndefined();
    expect(exported!.attributes.currentBuildId).toMatch(/^@temporalio\/worker@1\.24\.0\+/);
    expect(exported!.events[0]!.attributes!['exception.message']).toBe('invalid recipient [email]');
    expect(exported!.status.message).toBe('code [code] rejected');
    expect(exported!.spanContext().traceId).toBe(span.spanContext().traceId);
  });

  it('exports over OTLP/HTTP to the configured endpoint, with the service name', async () => {
    const bodies: Array<{ url?: string; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        bodies.push({ url: req.url, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const tracing = createTracing({ tracing: { otlpEndpoint: endpoint, serviceName: 'warden-api' } })!;
      tracing.tracer.startSpan('GET /livez').end();
      await tracing.shutdown();
      expect(bodies).toHaveLength(1);
      expect(bodies[0]!.url).toBe('/v1/traces');
      expect(bodies[0]!.body).toContain('GET /livez');
      expect(bodies[0]!.body).toContain('warden-api');
    } finally {
      server.close();
    }
  });
});
