-- Up Migration
-- The people who act on Warden through the admin API and the CLI. Each operator has one role
-- (viewer < responder < admin, src/shared/roles.ts) and any number of API tokens. A token is
-- shown once when it is issued; only its SHA-256 digest is kept (the token is 256 random
-- bits, so a fast digest is enough: there is nothing to guess). Operators are disabled, never
-- deleted, so the audit trail's names keep meaning someone.
CREATE TABLE operators (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  role        text NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

CREATE TABLE operator_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  operator_id  uuid NOT NULL REFERENCES operators (id),
  token_sha256 bytea NOT NULL UNIQUE,
  -- the token's first characters, to tell a user's tokens apart in a listing
  hint         text NOT NULL,
  label        text,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX operator_tokens_operator ON operator_tokens (operator_id);

-- Down Migration
DROP TABLE operator_tokens;
DROP TABLE operators;
