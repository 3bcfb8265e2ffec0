-- Up Migration
-- Refusals (rate-limited, blocked, shed, CAPTCHA required...) are audited once per client,
-- action, reason and window, not once per request (src/auth/refusals.ts): the window's first
-- refusal is an audit_events row, written at once so responders see an attack start, and this
-- table counts every refusal that row stands for, the later ones added every few seconds.
-- audit_events stays append-only. A count only grows, its window never changes, and it goes
-- only together with its audit row (the retention's cascade).
CREATE TABLE audit_refusal_counts (
  audit_id        bigint PRIMARY KEY REFERENCES audit_events (id) ON DELETE CASCADE,
  window_start    timestamptz NOT NULL,
  window_seconds  integer NOT NULL CHECK (window_seconds > 0),
  count           bigint NOT NULL CHECK (count >= 1),
  last_at         timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_refusal_counts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.audit_id = OLD.audit_id AND NEW.window_start = OLD.window_start
       AND NEW.window_seconds = OLD.window_seconds AND NEW.count >= OLD.count THEN
      RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_refusal_counts: a count only grows';
  END IF;
  -- the cascade of the audit row's deletion (warden_audit_retention) has removed the row already
  IF NOT EXISTS (SELECT 1 FROM audit_events WHERE id = OLD.audit_id) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_refusal_counts: a count goes only with its audit row';
END;
$$;

CREATE TRIGGER audit_refusal_counts_guard BEFORE UPDATE OR DELETE ON audit_refusal_counts
  FOR EACH ROW EXECUTE FUNCTION audit_refusal_counts_guard();

-- The trail as its readers count it: every audit row with `count`, the requests it stands for
-- (1 for every event that is not a window of refusals). Counting refusals per address is
-- `sum(count)` over this view, never `count(*)` over audit_events.
CREATE VIEW audit_trail AS
  SELECT a.id, a.occurred_at, a.event_type, a.outcome, a.reason, a.challenge_id, a.user_id, a.method,
         a.ip_masked, a.phone_last4, a.email_domain, a.incident_id, a.details,
         coalesce(c.count, 1) AS count, c.window_start AS count_window_start,
         c.window_seconds AS count_window_seconds, c.last_at AS count_last_at
    FROM audit_events a LEFT JOIN audit_refusal_counts c ON c.audit_id = a.id;

-- Down Migration
DROP VIEW audit_trail;
DROP TABLE audit_refusal_counts;
DROP FUNCTION audit_refusal_counts_guard();
