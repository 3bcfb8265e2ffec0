import type { Runtime } from '../runtime';
import { buildAdminApp, buildIntegrationsApp, buildMetricsApp, buildPublicApp, type WardenApp } from './app';

export interface ApiServers {
  public: WardenApp;
  admin: WardenApp;
  metrics: WardenApp;
  /** Slack and Alertmanager, when WARDEN_INTEGRATIONS_PORT gives them a listener of their own */
  integrations?: WardenApp;
  urls: { public: string; admin: string; metrics: string; integrations?: string };
  close(): Promise<void>;
}

function urlOf(app: WardenApp): string {
  const address = app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('server is not listening');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * Starts the public, admin and metrics servers (and the integrations server when it has a
 * port). `close()` stops accepting, lets in-flight requests finish, and closes them all; it
 * does not close the runtime (its owner does).
 */
export async function startApiServers(runtime: Runtime, ports = runtime.config.ports): Promise<ApiServers> {
  const host = runtime.config.host;
  const apps: WardenApp[] = [];
  try {
    const publicApp = await buildPublicApp(runtime);
    apps.push(publicApp);
    const adminApp = await buildAdminApp(runtime);
    apps.push(adminApp);
    const metricsApp = await buildMetricsApp(runtime);
    apps.push(metricsApp);
    await publicApp.listen({ host, port: ports.public });
    await adminApp.listen({ host, port: ports.admin });
    await metricsApp.listen({ host, port: ports.metrics });
    let integrationsApp: WardenApp | undefined;
    if (ports.integrations !== undefined) {
      integrationsApp = await buildIntegrationsApp(runtime);
      apps.push(integrationsApp);
      await integrationsApp.listen({ host, port: ports.integrations });
    }
    return {
      public: publicApp,
      admin: adminApp,
      metrics: metricsApp,
      integrations: integrationsApp,
      urls: {
        public: urlOf(publicApp),
        admin: urlOf(adminApp),
        metrics: urlOf(metricsApp),
        ...(integrationsApp ? { integrations: urlOf(integrationsApp) } : {}),
      },
      close: async () => {
        await Promise.all(apps.map((app) => app.close()));
      },
    };
  } catch (err) {
    await Promise.all(apps.map((app) => app.close().catch(() => {})));
    throw err;
  }
}
