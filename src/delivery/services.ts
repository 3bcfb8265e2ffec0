import { Type } from '@sinclair/typebox';
import { authServices, MAX_STALENESS_MS } from '../auth/services';
import type { Runtime } from '../runtime';
import type { AuthMethod } from '../shared/auth';
import { channelSettingKey, METHOD_CHANNEL, RouteCache } from './routes';

/** The delivery caches of one process (one per Runtime), shared by its API and its worker. */
export interface DeliveryServices {
  routes: RouteCache;
}

const perRuntime = new WeakMap<object, DeliveryServices>();

export function deliveryServices(runtime: Pick<Runtime, 'db'>): DeliveryServices {
  let services = perRuntime.get(runtime);
  if (!services) {
    services = { routes: new RouteCache(runtime.db, MAX_STALENESS_MS) };
    perRuntime.set(runtime, services);
  }
  return services;
}

/**
 * Graceful degradation: a channel takes new challenges (and resends) only while
 * its `auth.<method>.enabled` setting and its route's `enabled` both say so. Both are written
 * together by setChannelEnabled; either one alone (an SQL edit) is enough to switch it off.
 */
export async function channelEnabled(
  runtime: Pick<Runtime, 'db' | 'config' | 'logger'>,
  method: AuthMethod,
): Promise<boolean> {
  const channel = METHOD_CHANNEL[method];
  const [setting, route] = await Promise.all([
    authServices(runtime).settings.get(channelSettingKey(channel), Type.Boolean(), true),
    deliveryServices(runtime).routes.get(channel),
  ]);
  return setting && route.enabled;
}

/** After a change made by this process: its own caches are dropped, other processes catch up within 5 s. */
export function invalidateDeliveryCaches(runtime: Pick<Runtime, 'db' | 'config' | 'logger'>): void {
  deliveryServices(runtime).routes.invalidate();
  authServices(runtime).settings.invalidate();
}
