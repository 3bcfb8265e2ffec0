import { loadKeyring } from '../crypto/keyring';
import type { Runtime } from '../runtime';
import { DataKeyStore } from './keys';
import { SettingsCache } from './settings';

/** How stale a process's copy of keys and settings may be (a change reaches every process within 5 s). */
export const MAX_STALENESS_MS = 5000;

export interface AuthServices {
  keys: DataKeyStore;
  settings: SettingsCache;
}

const perRuntime = new WeakMap<object, AuthServices>();

/**
 * The auth caches of one process (one per Runtime): the API and the worker of one process
 * share them, so an admin change made through this process is seen by it at once.
 */
export function authServices(runtime: Pick<Runtime, 'config' | 'db' | 'logger'>): AuthServices {
  let services = perRuntime.get(runtime);
  if (!services) {
    const log = runtime.logger.child({ component: 'auth' });
    const warn = (message: string, fields: Record<string, unknown>) => log.warn(fields, message);
    const kek = loadKeyring(
      { inline: runtime.config.keys.keyring, file: runtime.config.keys.keyringFile },
      'keyring',
      'WARDEN_KEYRING or WARDEN_KEYRING_FILE is required: it wraps the OTP peppers and seal keys',
    );
    services = {
      keys: new DataKeyStore(runtime.db, kek, MAX_STALENESS_MS, {
        warn,
        info: (message, fields) => log.info(fields, message),
      }),
      settings: new SettingsCache(runtime.db, MAX_STALENESS_MS, warn),
    };
    perRuntime.set(runtime, services);
  }
  return services;
}
