-- Up Migration
-- The base schema. Table and column names follow the incident-response runbook wherever it
-- names them, so the SQL in the runbook runs unchanged against this database.

CREATE TABLE users (
  sub                   text PRIMARY KEY,
  phone                 text,            -- E.164
  email                 text,
  force_password_reset  boolean NOT NULL DEFAULT false,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);

-- One row per challenge. `status` is its lifecycle, written only on the challenge workflow's
-- path (open at the issue, then how it ended: src/shared/auth.ts lists the statuses); the
-- delivery_* columns say what delivery did, written by the send activities and by provider
-- callbacks. The secret is stored as bcrypt(HMAC-SHA256(pepper[key_id], secret));
-- sealed_secret is an AES-256-GCM copy for delivery retries, wiped when the challenge ends.
CREATE TABLE auth_challenges (
  id               uuid PRIMARY KEY,
  user_id          text NOT NULL,       -- no FK: unknown users get the same response shape
  method           text NOT NULL CHECK (method IN ('sms_otp', 'magic_link')),
  status           text NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'verified', 'expired', 'revoked', 'locked')),
  secret_hash      text,
  key_id           text,
  sealed_secret    bytea,
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL,
  sends            integer NOT NULL DEFAULT 0,
  client_ip_masked text,
  delivery_provider text,
  delivery_outcome  text,
  -- NULL until a send has an outcome; then whether the message reached the user
  delivery_status   text CHECK (delivery_status IN ('delivered', 'failed')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  last_attempt_at  timestamptz,
  ended_at         timestamptz,
  end_reason       text
);
CREATE INDEX auth_challenges_user_idx ON auth_challenges (user_id, created_at);
CREATE INDEX auth_challenges_active_idx ON auth_challenges (status) WHERE status = 'open';
CREATE INDEX auth_challenges_key_idx ON auth_challenges (key_id) WHERE sealed_secret IS NOT NULL;

-- Per-challenge validation counters, including attempts made after expiry (the runbook's
-- forensic query looks for those).
CREATE TABLE challenge_validation_attempts (
  challenge_id        uuid PRIMARY KEY,
  user_id             text NOT NULL,
  validation_attempts integer NOT NULL DEFAULT 0,
  last_attempt_at     timestamptz NOT NULL DEFAULT now(),
  challenge_expired   boolean NOT NULL DEFAULT false
);

-- Append-only: the trigger below refuses UPDATE and DELETE.
CREATE TABLE audit_events (
  id            bigserial PRIMARY KEY,
  occurred_at   timestamptz NOT NULL DEFAULT now(),
  event_type    text NOT NULL,
  outcome       text,
  reason        text,
  challenge_id  uuid,
  user_id       text,
  method        text,
  ip_masked     text,
  phone_last4   text,
  email_domain  text,
  incident_id   text,
  details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_type_idx ON audit_events (event_type, occurred_at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- Sliding-window rate limiting: one row per counted attempt.
CREATE TABLE rate_limit_attempts (
  id            bigserial PRIMARY KEY,
  user_id       text,
  ip            inet,
  action        text NOT NULL,          -- initiate | verify
  exceeded      boolean NOT NULL DEFAULT false,
  attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rate_limit_attempts_user_idx ON rate_limit_attempts (user_id, attempted_at) WHERE user_id IS NOT NULL;
CREATE INDEX rate_limit_attempts_ip_idx ON rate_limit_attempts (ip, attempted_at) WHERE ip IS NOT NULL;

CREATE TABLE ip_blocklist (
  id           bigserial PRIMARY KEY,
  cidr         cidr NOT NULL,
  reason       text NOT NULL,
  created_by   text NOT NULL DEFAULT 'admin',
  incident_id  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  removed_at   timestamptz
);
CREATE INDEX ip_blocklist_cidr_idx ON ip_blocklist USING gist (cidr inet_ops) WHERE removed_at IS NULL;

-- Delivery routing per channel, changed at runtime by the admin API and the runbooks.
CREATE TABLE delivery_routes (
  channel             text PRIMARY KEY CHECK (channel IN ('sms', 'email')),
  primary_provider    text NOT NULL,
  backup_provider     text,
  failover_threshold  integer NOT NULL CHECK (failover_threshold > 0),
  enabled             boolean NOT NULL DEFAULT true,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  updated_by          text NOT NULL DEFAULT 'migration'
);
INSERT INTO delivery_routes (channel, primary_provider, backup_provider, failover_threshold) VALUES
  ('sms', 'twilio', 'plivo', 5),
  ('email', 'sendgrid', 'ses', 3);

-- Failed deliveries, so an outage's messages can be resent afterwards.
CREATE TABLE delivery_failures (
  id               bigserial PRIMARY KEY,
  challenge_id     uuid,
  user_id          text NOT NULL,
  channel          text NOT NULL,
  provider         text NOT NULL,
  phone_number     text,
  email            text,
  error_class      text NOT NULL,        -- transient | permanent
  error_code       text,
  failed_attempts  integer NOT NULL DEFAULT 1,
  first_failed_at  timestamptz NOT NULL DEFAULT now(),
  last_attempt_at  timestamptz NOT NULL DEFAULT now(),
  resent_at        timestamptz
);
CREATE INDEX delivery_failures_time_idx ON delivery_failures (last_attempt_at);

-- Runtime settings responders change without a restart (rate limits, channel switches...).
CREATE TABLE runtime_settings (
  key         text PRIMARY KEY,
  value       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL DEFAULT 'migration'
);
INSERT INTO runtime_settings (key, value) VALUES
  ('auth.sms_otp.enabled', 'true'),
  ('auth.magic_link.enabled', 'true'),
  ('rate_limiting', '{"per_user": {"window_seconds": 300, "max_attempts": 10}, "per_ip": {"window_seconds": 300, "max_attempts": 50}}');

-- Data keys (OTP pepper + seal key), wrapped by a key-encryption key from the keyring.
CREATE TABLE signing_keys (
  id             text PRIMARY KEY,
  kek_id         text NOT NULL,
  wrapped_pepper bytea NOT NULL,
  wrapped_seal   bytea NOT NULL,
  status         text NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  retired_at     timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

CREATE TABLE key_rotations (
  id                  bigserial PRIMARY KEY,
  from_key_id         text,
  to_key_id           text NOT NULL,
  reason              text NOT NULL,
  incident_id         text,
  revoked_challenges  integer NOT NULL DEFAULT 0,
  rotated_by          text NOT NULL,
  rotated_at          timestamptz NOT NULL DEFAULT now()
);

-- Projection of incident workflows, for SQL reporting; the workflow is the source of truth.
CREATE TABLE incidents (
  id               text PRIMARY KEY,   -- INC-YYYY-MM-DD-NN
  type             text NOT NULL,
  severity         text NOT NULL CHECK (severity IN ('P0', 'P1', 'P2', 'P3')),
  status           text NOT NULL CHECK (status IN ('investigating', 'mitigating', 'resolved')),
  title            text NOT NULL,
  owner            text,
  data_breach      boolean NOT NULL DEFAULT false,
  detected_at      timestamptz NOT NULL DEFAULT now(),
  acknowledged_at  timestamptz,
  resolved_at      timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_open_idx ON incidents (status) WHERE status <> 'resolved';

-- Down Migration
DROP TABLE incidents, key_rotations, signing_keys, runtime_settings, delivery_failures,
  delivery_routes, ip_blocklist, rate_limit_attempts, audit_events, challenge_validation_attempts,
  auth_challenges, users;
DROP FUNCTION audit_events_append_only();
