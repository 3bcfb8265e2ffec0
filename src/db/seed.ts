import type { Queryable } from './database';

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
