-- Up Migration
-- Durable delivery: routes that cannot name a provider of the wrong channel, a
-- circuit breaker per provider shared by every worker, a ledger of provider calls keyed by
-- the send's idempotency key, and one resendable failure row per challenge.

-- A route names only providers of its own channel, never the same one twice. `mode`:
-- `auto` lets the circuit breaker choose; `backup` is a responder's (or runbook's) switch
-- to the backup that the breaker never undoes.
ALTER TABLE delivery_routes
  ADD COLUMN mode text NOT NULL DEFAULT 'auto' CHECK (mode IN ('auto', 'backup')),
  ADD COLUMN circuit_cooldown_seconds integer NOT NULL DEFAULT 30
    CHECK (circuit_cooldown_seconds BETWEEN 1 AND 86400),
  ADD COLUMN change_reason text,
  ADD COLUMN incident_id text,
  ADD CONSTRAINT delivery_routes_providers_check CHECK (
    (channel = 'sms' AND primary_provider IN ('twilio', 'plivo') AND (backup_provider IS NULL OR backup_provider IN ('twilio', 'plivo')))
    OR (channel = 'email' AND primary_provider IN ('sendgrid', 'ses') AND (backup_provider IS NULL OR backup_provider IN ('sendgrid', 'ses')))
  ),
  ADD CONSTRAINT delivery_routes_distinct_check CHECK (backup_provider IS DISTINCT FROM primary_provider),
  ADD CONSTRAINT delivery_routes_threshold_check CHECK (failover_threshold BETWEEN 1 AND 1000);

-- One breaker per provider, updated under a row lock by whichever worker saw the outcome.
-- closed: in use; open: skipped until opened_at + the route's cool-down; half_open: one worker
-- holds the probe lease.
CREATE TABLE provider_circuits (
  provider              text PRIMARY KEY CHECK (provider IN ('twilio', 'plivo', 'sendgrid', 'ses')),
  channel               text NOT NULL CHECK (channel IN ('sms', 'email')),
  state                 text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
  consecutive_failures  integer NOT NULL DEFAULT 0,
  opened_at             timestamptz,
  probe_lease_until     timestamptz,
  probe_key             text,
  -- a 429's Retry-After: nobody calls the provider before this
  throttled_until       timestamptz,
  last_failure_at       timestamptz,
  last_success_at       timestamptz,
  updated_at            timestamptz NOT NULL DEFAULT now()
);
INSERT INTO provider_circuits (provider, channel) VALUES
  ('twilio', 'sms'), ('plivo', 'sms'), ('sendgrid', 'email'), ('ses', 'email');

-- The ledger: one row per (send, provider). A row that says `sent` is never sent again; a
-- row left `sending` by a killed worker is retried with the same idempotency key.
CREATE TABLE delivery_attempts (
  id                   bigserial PRIMARY KEY,
  idempotency_key      text NOT NULL,
  provider             text NOT NULL,
  challenge_id         uuid NOT NULL,
  send_number          integer NOT NULL,
  channel              text NOT NULL CHECK (channel IN ('sms', 'email')),
  status               text NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
  attempts             integer NOT NULL DEFAULT 0,    -- provider calls made
  failed_calls         integer NOT NULL DEFAULT 0,    -- of those, the ones that failed
  error_class          text CHECK (error_class IN ('transient', 'permanent')),
  error_code           text,
  provider_message_id  text,
  started_at           timestamptz NOT NULL DEFAULT now(),
  last_attempt_at      timestamptz NOT NULL DEFAULT now(),
  completed_at         timestamptz,
  -- the provider's status callback in its own words (delivered, undelivered, bounce...) and
  -- what it means for the send
  report               text,
  report_outcome       text CHECK (report_outcome IN ('delivered', 'failed')),
  reported_at          timestamptz,
  UNIQUE (idempotency_key, provider)
);
CREATE INDEX delivery_attempts_challenge_idx ON delivery_attempts (challenge_id);
CREATE INDEX delivery_attempts_message_idx ON delivery_attempts (provider, provider_message_id) WHERE provider_message_id IS NOT NULL;

-- The challenge's delivery facts beside delivery_provider / delivery_outcome.
ALTER TABLE auth_challenges
  ADD COLUMN delivery_error_class text,
  ADD COLUMN delivery_report text,
  ADD COLUMN delivery_reported_at timestamptz;

-- One failure row per challenge (the latest failed send), resent at most once.
DELETE FROM delivery_failures a USING delivery_failures b
 WHERE a.challenge_id = b.challenge_id AND a.id < b.id;
ALTER TABLE delivery_failures
  ADD COLUMN send_number integer,
  ADD COLUMN resolved_at timestamptz,
  ADD COLUMN resend_send_number integer,
  ADD COLUMN resend_outcome text,
  ADD COLUMN resent_by text;
CREATE UNIQUE INDEX delivery_failures_challenge_idx ON delivery_failures (challenge_id);

-- Down Migration
DROP INDEX delivery_failures_challenge_idx;
ALTER TABLE delivery_failures
  DROP COLUMN resent_by,
  DROP COLUMN resend_outcome,
  DROP COLUMN resend_send_number,
  DROP COLUMN resolved_at,
  DROP COLUMN send_number;
ALTER TABLE auth_challenges
  DROP COLUMN delivery_reported_at,
  DROP COLUMN delivery_report,
  DROP COLUMN delivery_error_class;
DROP TABLE delivery_attempts;
DROP TABLE provider_circuits;
ALTER TABLE delivery_routes
  DROP CONSTRAINT delivery_routes_threshold_check,
  DROP CONSTRAINT delivery_routes_distinct_check,
  DROP CONSTRAINT delivery_routes_providers_check,
  DROP COLUMN incident_id,
  DROP COLUMN change_reason,
  DROP COLUMN circuit_cooldown_seconds,
  DROP COLUMN mode;
