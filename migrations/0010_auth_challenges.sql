-- Up Migration
-- Auth challenges: idempotent audit inserts from activity retries, and the
-- runtime-configurable challenge settings beside the rate limits.

-- An activity that inserts an audit event may run twice (a retry after a lost reply); the
-- second insert with the same key is dropped. NULL keys never conflict.
ALTER TABLE audit_events ADD COLUMN dedupe_key text;
CREATE UNIQUE INDEX audit_events_dedupe_idx ON audit_events (dedupe_key);
CREATE INDEX audit_events_challenge_idx ON audit_events (challenge_id) WHERE challenge_id IS NOT NULL;

-- Challenge lifetimes and budgets (the defaults README.md lists), changed at runtime through
-- PUT /admin/api/v1/auth/settings; a live challenge keeps the values it started with.
INSERT INTO runtime_settings (key, value) VALUES
  ('auth.challenge', '{"otp_ttl_seconds": 300, "magic_link_ttl_seconds": 900, "max_attempts": 5, "resend_cooldown_seconds": 30, "max_sends": 5}')
ON CONFLICT (key) DO NOTHING;

-- Rate-limit windows are counted per scope and action.
CREATE INDEX rate_limit_attempts_user_action_idx ON rate_limit_attempts (user_id, action, attempted_at) WHERE user_id IS NOT NULL;
CREATE INDEX rate_limit_attempts_ip_action_idx ON rate_limit_attempts (ip, action, attempted_at) WHERE ip IS NOT NULL;
CREATE INDEX rate_limit_attempts_time_idx ON rate_limit_attempts (attempted_at);

-- Down Migration
DROP INDEX rate_limit_attempts_time_idx;
DROP INDEX rate_limit_attempts_ip_action_idx;
DROP INDEX rate_limit_attempts_user_action_idx;
DELETE FROM runtime_settings WHERE key = 'auth.challenge';
DROP INDEX audit_events_challenge_idx;
DROP INDEX audit_events_dedupe_idx;
ALTER TABLE audit_events DROP COLUMN dedupe_key;
