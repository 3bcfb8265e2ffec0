-- Up Migration
-- Containment of compromised challenges in a constant number of statements whatever their
-- number (src/auth/cutoffs.ts): a row here makes every challenge of its scope created at or
-- before `revoked_before` unverifiable at once. The verify path reads it in the statements it
-- already runs (the rate-limit check that reads the challenge row, the attempt's end); the
-- challenge workflows then end each affected challenge at their own pace.
--   all  (subject '')      every challenge of the service
--   user (subject user id)  every challenge of one user
--   key  (subject key id)   every challenge issued under one data key
-- One row per scope and subject: a later cut-off moves `revoked_before` forward, never back.
CREATE TABLE challenge_cutoffs (
  scope          text NOT NULL CHECK (scope IN ('all', 'user', 'key')),
  subject        text NOT NULL,
  revoked_before timestamptz NOT NULL,
  reason         text NOT NULL CHECK (reason IN ('manual_revoke', 'security_incident', 'key_rotation')),
  incident_id    text,
  set_by         text NOT NULL,
  set_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, subject),
  CHECK ((scope = 'all') = (subject = ''))
);

-- Down Migration
DROP TABLE challenge_cutoffs;
