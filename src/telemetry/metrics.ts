import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per process (tests make one per harness). Every metric Warden defines is
 * registered against the registry passed in, never the global default, so two apps in one
 * process never collide. Label values are bounded sets: never user ids, IPs or secrets.
 */
export function createRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'warden' });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
