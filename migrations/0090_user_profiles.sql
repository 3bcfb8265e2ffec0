-- Up Migration
-- Users become manageable through the admin API (src/auth/users.ts): a locale for their
-- messages, free metadata for the integrating application, and a disabled state. A disabled
-- user is treated exactly like an unknown one when signing in. Phone numbers (E.164) and
-- email addresses (domain lower-cased) are unique among enabled users; a disabled user keeps
-- theirs without blocking someone else's.
ALTER TABLE users
  ADD COLUMN locale text CHECK (locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
  ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  ADD COLUMN disabled_at timestamptz;

CREATE UNIQUE INDEX users_phone_enabled ON users (phone) WHERE phone IS NOT NULL AND disabled_at IS NULL;
CREATE UNIQUE INDEX users_email_enabled ON users (email) WHERE email IS NOT NULL AND disabled_at IS NULL;

-- Down Migration
DROP INDEX users_email_enabled;
DROP INDEX users_phone_enabled;
ALTER TABLE users DROP COLUMN disabled_at, DROP COLUMN metadata, DROP COLUMN locale;
