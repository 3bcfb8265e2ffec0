import { Type } from '@sinclair/typebox';
import type { Runtime } from '../runtime';
import type { AuthMethod } from '../shared/auth';
import { channelSettingKey, METHOD_CHANNEL } from './routes';

/**
 * Graceful degradation: a channel takes new challenges (and resends) only while
 * its `auth.<method>.enabled` setting and its route's `enabled` both say so. Both are written
 * together by setChannelEnabled; either one alone (an SQL edit) is enough to switch it off.
 */
export async function channelEnabled(
  { settings, routes }: Pick<Runtime, 'settings' | 'routes'>,
  method: AuthMethod,
): Promise<boolean> {
  const channel = METHOD_CHANNEL[method];
  const [setting, route] = await Promise.all([
    settings.get(channelSettingKey(channel), Type.Boolean(), true),
    routes.get(channel),
  ]);
  return setting && route.enabled;
}

/** After a change made by this process: its own caches are dropped, other processes catch up within 5 s. */
export function invalidateDeliveryCaches({ settings, routes }: Pick<Runtime, 'settings' | 'routes'>): void {
  routes.invalidate();
  settings.invalidate();
}
