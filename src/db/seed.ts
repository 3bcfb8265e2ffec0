import { ensureApp, type App } from '../auth/apps';
import type { Database, Queryable } from './database';

/** Dev and test users. `test-user` is the account the runbook's synthetic checks use. */
export const SEED_USERS = [
  { sub: 'test-user', phone: '+15555550100', email: 'test-user@example.com' },
  { sub: 'test-user-2', phone: '+15555550102', email: 'test-user-2@example.com' },
  { sub: 'test-user-3', phone: '+15555550103', email: 'test-user-3@example.com' },
  { sub: 'alice', phone: '+15555550111', email: 'alice@example.com' },
  { sub: 'bob', phone: '+15555550112', email: 'bob@example.org' },
  { sub: 'email-only', phone: null, email: 'email-only@example.com' },
  { sub: 'phone-only', phone: '+15555550113', email: null },
] as const;

export async function seedUsers(db: Queryable): Promise<void> {
  for (const user of SEED_USERS) {
    await db.query(
      `INSERT INTO users (sub, phone, email) VALUES ($1, $2, $3)
       ON CONFLICT (sub) DO NOTHING`,
      [user.sub, user.phone, user.email],
    );
  }
}

/** The app `npm start` and the tests register, and make the default (WARDEN_DEFAULT_APP). */
export const DEV_APP_ID = 'warden-dev';

/**
 * Registers the development app when it is absent (an existing one is left as it is): both
 * methods, no web origins and no redirect URI, so a magic link confirmed on the device that
 * asked lands on Warden's own "signed in" page, and the code is collected by polling or from
 * the verify answer (docs/apps.md).
 */
export async function seedDevApp(db: Database): Promise<App> {
  return ensureApp(db, {
    clientId: DEV_APP_ID,
    name: 'Warden development',
    methods: ['sms_otp', 'magic_link'],
    redirectUris: [],
    webOrigins: [],
  });
}
