import * as otel from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/**
 * One SERVER span per request, named by method and route template (`POST
 * /browser/api/v1/identity/auth/otp/verify`), never by the raw URL: a magic link carries its
 * token in the query string. No header, body or query value becomes an attribute.
 *
 * Incoming `traceparent` headers are ignored: the public API faces the internet and a client
 * must not choose our trace ids; every request starts a trace of its own.
 */
export default fp<{ tracer: otel.Tracer; server: string }>(
  async (app, { tracer, server }) => {
    const spans = new WeakMap<FastifyRequest, otel.Span>();

    app.addHook('onRequest', (request, _reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const span = tracer.startSpan(
        `${request.method} ${route}`,
        {
          kind: otel.SpanKind.SERVER,
          attributes: { 'http.request.method': request.method, 'http.route': route, 'warden.server': server },
        },
        otel.ROOT_CONTEXT,
      );
      spans.set(request, span);
      done();
    });

    // body parsing resumes from socket events, outside any context set earlier: enter the
    // request's span right before the handler, whose async continuations then carry it
    app.addHook('preHandler', (request, _reply, done) => {
      const span = spans.get(request);
      if (!span) return done();
      otel.context.with(otel.trace.setSpan(otel.ROOT_CONTEXT, span), done);
    });

    const end = (request: FastifyRequest, status?: number) => {
      const span = spans.get(request);
      if (!span) return;
      spans.delete(request);
      if (status !== undefined) {
        span.setAttribute('http.response.status_code', status);
        // 4xx is the client's business; only our own failures mark the span as an error
        if (status >= 500) span.setStatus({ code: otel.SpanStatusCode.ERROR });
      } else {
        span.setStatus({ code: otel.SpanStatusCode.ERROR, message: 'request aborted' });
      }
      span.end();
    };
    app.addHook('onResponse', async (request, reply) => end(request, reply.statusCode));
    app.addHook('onRequestAbort', async (request) => end(request));
  },
  { name: 'warden-http-tracing' },
);
