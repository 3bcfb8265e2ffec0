-- Up Migration
-- Runbooks: a projection of every run and step (the workflow is the source of truth;
-- these rows answer after Temporal's retention and feed SQL reporting), what a run changed so
-- it can put it back, the files it produced for responders, and who it notified.

CREATE TABLE runbook_runs (
  workflow_id  text PRIMARY KEY,
  runbook      text NOT NULL,
  incident_id  text,
  severity     text NOT NULL CHECK (severity IN ('P0', 'P1', 'P2', 'P3')),
  status       text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
  started_by   text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz,
  summary      text
);
CREATE INDEX runbook_runs_started_idx ON runbook_runs (started_at DESC);

-- One row per step run (`step` carries `#n` for the n-th run of a repeatable step).
CREATE TABLE runbook_steps (
  workflow_id  text NOT NULL,
  step         text NOT NULL,
  status       text NOT NULL,
  summary      text,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, step)
);

-- A runtime setting a run changed, with the value it found: restoring puts back what was
-- there before (not a hard-coded default), and only if nobody changed it since.
CREATE TABLE runbook_saved_settings (
  workflow_id  text NOT NULL,
  key          text NOT NULL,
  previous     jsonb,                  -- NULL: there was no row
  applied      jsonb NOT NULL,
  saved_at     timestamptz NOT NULL DEFAULT now(),
  restored_at  timestamptz,
  PRIMARY KEY (workflow_id, key)
);

-- Files a run produced for responders (forensic NDJSON export, anomaly query results, leak
-- scan report), stored in chunks so a large export never needs one huge value.
CREATE TABLE runbook_artifacts (
  id            bigserial PRIMARY KEY,
  workflow_id   text NOT NULL,
  name          text NOT NULL,
  content_type  text NOT NULL,
  incident_id   text,
  rows          integer NOT NULL DEFAULT 0,
  bytes         bigint NOT NULL DEFAULT 0,
  sha256        text NOT NULL,
  window_start  timestamptz,
  window_end    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workflow_id, name)
);
CREATE TABLE runbook_artifact_chunks (
  artifact_id  bigint NOT NULL REFERENCES runbook_artifacts (id) ON DELETE CASCADE,
  seq          integer NOT NULL,
  body         text NOT NULL,
  PRIMARY KEY (artifact_id, seq)
);

-- Security notifications sent to affected users: at most one per user per incident.
CREATE TABLE runbook_notifications (
  incident_key  text NOT NULL,          -- the INC id, or the run's workflow id when standalone
  user_id       text NOT NULL,
  provider      text,
  outcome       text NOT NULL,          -- sent | no_email | rejected (the provider refused the address)
  sent_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (incident_key, user_id)
);

-- Failed attempts per user (the CAPTCHA gate, forensics) and the violation rate (abuse watch).
CREATE INDEX audit_events_user_idx ON audit_events (user_id, occurred_at) WHERE user_id IS NOT NULL;
CREATE INDEX rate_limit_attempts_exceeded_idx ON rate_limit_attempts (attempted_at) WHERE exceeded;

-- CAPTCHA after N failed attempts (threshold 3 by default), switched on by the abuse runbook.
INSERT INTO runtime_settings (key, value) VALUES
  ('auth.captcha', '{"enabled": false, "threshold": 3, "window_seconds": 900}')
ON CONFLICT (key) DO NOTHING;

-- Down Migration
DELETE FROM runtime_settings WHERE key = 'auth.captcha';
DROP INDEX rate_limit_attempts_exceeded_idx;
DROP INDEX audit_events_user_idx;
DROP TABLE runbook_notifications, runbook_artifact_chunks, runbook_artifacts, runbook_saved_settings, runbook_steps, runbook_runs;
