import fp from 'fastify-plugin';
import { Histogram, type Registry } from 'prom-client';

const histograms = new WeakMap<Registry, Histogram<'server' | 'method' | 'route' | 'status'>>();

function histogramFor(registry: Registry) {
  let histogram = histograms.get(registry);
  if (!histogram) {
    histogram = new Histogram({
      name: 'warden_http_request_duration_seconds',
      help: 'HTTP request latency by route template (never the raw URL: it may carry ids or tokens)',
      labelNames: ['server', 'method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    histograms.set(registry, histogram);
  }
  return histogram;
}

/** Request latency by route template; one histogram per registry shared by public and admin servers. */
export default fp<{ server: string }>(
  async (app, { server }) => {
    const histogram = histogramFor(app.warden.registry);
    app.addHook('onResponse', async (request, reply) => {
      histogram.observe(
        {
          server,
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      );
    });
  },
  { name: 'warden-http-metrics', dependencies: ['warden-runtime'] },
);
