-- Up Migration
-- Retention (src/activities/retention.ts, docs/operations.md#retention): a scheduled workflow
-- deletes rows older than each table's horizon, a bounded batch per statement, oldest first.
-- Every batch must be an index range scan on the table's time column, never a scan of the
-- table: the tables without such an index get one here (rate_limit_attempts, delivery_failures,
-- slack_request_signatures, canary_runs and audit_events have theirs already).
--
-- Building an index blocks writes to its table while it builds. On large tables, build them
-- beforehand without blocking, with the same names, and this migration only checks them:
--   CREATE INDEX CONCURRENTLY auth_challenges_ended_idx ON auth_challenges (ended_at) WHERE ended_at IS NOT NULL;
--   CREATE INDEX CONCURRENTLY challenge_validation_attempts_time_idx ON challenge_validation_attempts (last_attempt_at);
--   CREATE INDEX CONCURRENTLY delivery_attempts_time_idx ON delivery_attempts (last_attempt_at);
-- A CONCURRENTLY build that failed leaves an invalid index of that name: drop it and build again.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname IN ('auth_challenges_ended_idx', 'challenge_validation_attempts_time_idx',
                                  'delivery_attempts_time_idx') AND NOT i.indisvalid) THEN
    RAISE EXCEPTION 'an index of 0130 built beforehand is invalid (a failed CREATE INDEX CONCURRENTLY): drop it and build it again';
  END IF;
END
$$;
-- ended challenges only: an open challenge is never a candidate, and has no ended_at
CREATE INDEX IF NOT EXISTS auth_challenges_ended_idx ON auth_challenges (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS challenge_validation_attempts_time_idx ON challenge_validation_attempts (last_attempt_at);
CREATE INDEX IF NOT EXISTS delivery_attempts_time_idx ON delivery_attempts (last_attempt_at);

-- The audit trail's retention. audit_events stays append-only (its trigger refuses UPDATE and
-- DELETE) with one exception: warden_audit_retention() drops the trail's oldest rows, those older
-- than the horizon it is given, in id order. It names what it may drop in two transaction-local
-- settings the trigger reads, so no other statement (a responder's DELETE, a mistaken cleanup)
-- deletes anything. What it dropped is recorded in audit_retention: the trail that remains starts
-- right after `dropped_through_id`, and an export taken before says which rows that prefix held.
CREATE TABLE audit_retention (
  singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- every row with id <= this was dropped by retention (none after it)
  dropped_through_id  bigint NOT NULL,
  -- the latest occurred_at among the dropped rows
  dropped_through_at  timestamptz NOT NULL,
  dropped_rows        bigint NOT NULL,
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- warden_audit_retention() dropping the prefix it checked: at or before its last id, older
  -- than its horizon
  IF TG_OP = 'DELETE'
     AND OLD.id <= coalesce(nullif(current_setting('warden.audit_retention_through', true), '')::bigint, 0)
     AND OLD.occurred_at < coalesce(nullif(current_setting('warden.audit_retention_before', true), '')::timestamptz,
                                    '-infinity'::timestamptz)
  THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

-- Drops at most p_limit of the trail's oldest rows, in id order, stopping at the first row that
-- is not older than p_before: the trail loses a prefix and what remains is the trail as it was
-- from that row on, never a trail with holes. Returns how many rows it dropped (fewer than
-- p_limit: nothing older is left at its head).
CREATE FUNCTION warden_audit_retention(p_before timestamptz, p_limit int) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ids bigint[];
  through_id bigint;
  through_at timestamptz;
  n bigint;
BEGIN
  -- one at a time (two Wardens on one database): the second waits for the first's batch
  PERFORM pg_advisory_xact_lock(hashtextextended('warden:audit_retention', 0));
  -- the head of the trail (primary key order) up to its first row not older than p_before
  SELECT array_agg(id ORDER BY id), max(id), max(occurred_at) INTO ids, through_id, through_at FROM (
    SELECT id, occurred_at, bool_and(occurred_at < p_before) OVER (ORDER BY id) AS all_older
      FROM (SELECT id, occurred_at FROM audit_events ORDER BY id LIMIT p_limit) AS head
  ) AS prefix
   WHERE all_older;
  IF through_id IS NULL THEN
    RETURN 0;
  END IF;
  PERFORM set_config('warden.audit_retention_through', through_id::text, true);
  PERFORM set_config('warden.audit_retention_before', p_before::text, true);
  -- exactly the rows checked above, found by primary key
  DELETE FROM audit_events WHERE id = ANY (ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('warden.audit_retention_through', '', true);
  PERFORM set_config('warden.audit_retention_before', '', true);
  INSERT INTO audit_retention (dropped_through_id, dropped_through_at, dropped_rows)
  VALUES (through_id, through_at, n)
  ON CONFLICT (singleton) DO UPDATE
    SET dropped_through_id = greatest(audit_retention.dropped_through_id, EXCLUDED.dropped_through_id),
        dropped_through_at = greatest(audit_retention.dropped_through_at, EXCLUDED.dropped_through_at),
        dropped_rows = audit_retention.dropped_rows + EXCLUDED.dropped_rows,
        updated_at = now();
  RETURN n;
END
$$;

-- Down Migration
DROP FUNCTION warden_audit_retention(timestamptz, int);
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
DROP TABLE audit_retention;
DROP INDEX delivery_attempts_time_idx;
DROP INDEX challenge_validation_attempts_time_idx;
DROP INDEX auth_challenges_ended_idx;
