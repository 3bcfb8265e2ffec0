-- Up Migration
-- The rate-limit check counts only the attempts that were let through (`NOT exceeded`) in the
-- window, but its indexes held every row, refused ones included: a client refused at a high
-- rate made each of its next requests scan all its refused rows (20,000 refused rows: about
-- 900 buffers and 8 ms per check). The counts now read partial indexes of the attempts that
-- count, and stop at the limit, so a check costs O(limit) whatever the client sends. Refused
-- rows keep their own indexes (ip, user, exceeded) for the captcha check and the abuse runbook.
--
-- Building an index blocks writes to the table while it builds, and every auth request writes
-- here (two days of attempts are kept). On a large table, build both indexes beforehand without
-- blocking, with the same names, and this migration only drops the old ones:
--   CREATE INDEX CONCURRENTLY rate_limit_attempts_user_live_idx ON rate_limit_attempts (user_id, action, attempted_at) WHERE user_id IS NOT NULL AND NOT exceeded;
--   CREATE INDEX CONCURRENTLY rate_limit_attempts_ip_live_idx ON rate_limit_attempts (ip, action, attempted_at) WHERE ip IS NOT NULL AND NOT exceeded;
-- A CONCURRENTLY build that failed leaves an invalid index of that name: drop it and build again.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname IN ('rate_limit_attempts_user_live_idx', 'rate_limit_attempts_ip_live_idx') AND NOT i.indisvalid) THEN
    RAISE EXCEPTION 'an index of 0060 built beforehand is invalid (a failed CREATE INDEX CONCURRENTLY): drop it and build it again';
  END IF;
END
$$;
CREATE INDEX IF NOT EXISTS rate_limit_attempts_user_live_idx ON rate_limit_attempts (user_id, action, attempted_at) WHERE user_id IS NOT NULL AND NOT exceeded;
CREATE INDEX IF NOT EXISTS rate_limit_attempts_ip_live_idx ON rate_limit_attempts (ip, action, attempted_at) WHERE ip IS NOT NULL AND NOT exceeded;
DROP INDEX IF EXISTS rate_limit_attempts_user_action_idx;
DROP INDEX IF EXISTS rate_limit_attempts_ip_action_idx;

CREATE OR REPLACE FUNCTION warden_rate_limit_check(
  p_user_lock text, p_ip_lock text,
  p_user text, p_ip inet, p_action text,
  p_user_window int, p_user_max int, p_ip_window int, p_ip_max int
) RETURNS TABLE (allowed boolean, scope text, retry_after int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  user_n int := 0;
  user_oldest timestamptz;
  ip_n int;
  ip_oldest timestamptz;
BEGIN
  IF p_user IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user_lock, 0));
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended(p_ip_lock, 0));

  -- the oldest attempts first, at most the limit's worth: enough to decide, and Retry-After is
  -- when the oldest of them leaves the window (as before: after a limit was lowered, more than
  -- one may have to leave before a request passes)
  IF p_user IS NOT NULL THEN
    SELECT count(*)::int, min(t) INTO user_n, user_oldest FROM (
      SELECT attempted_at AS t FROM rate_limit_attempts
       WHERE user_id = p_user AND action = p_action AND NOT exceeded
         AND attempted_at > now() - make_interval(secs => p_user_window)
       ORDER BY attempted_at LIMIT p_user_max) AS counted;
  END IF;
  SELECT count(*)::int, min(t) INTO ip_n, ip_oldest FROM (
    SELECT attempted_at AS t FROM rate_limit_attempts
     WHERE ip = p_ip AND action = p_action AND NOT exceeded
       AND attempted_at > now() - make_interval(secs => p_ip_window)
     ORDER BY attempted_at LIMIT p_ip_max) AS counted;

  IF p_user IS NOT NULL AND user_n >= p_user_max THEN
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (p_user, NULL, p_action, true);
    RETURN QUERY SELECT false, 'user'::text,
      greatest(1, coalesce(ceil(extract(epoch FROM user_oldest + make_interval(secs => p_user_window) - now()))::int, 1));
  ELSIF ip_n >= p_ip_max THEN
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (NULL, p_ip, p_action, true);
    RETURN QUERY SELECT false, 'ip'::text,
      greatest(1, coalesce(ceil(extract(epoch FROM ip_oldest + make_interval(secs => p_ip_window) - now()))::int, 1));
  ELSE
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (NULL, p_ip, p_action, false);
    IF p_user IS NOT NULL THEN
      INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (p_user, NULL, p_action, false);
    END IF;
    RETURN QUERY SELECT true, NULL::text, NULL::int;
  END IF;
END
$$;

-- Down Migration
DROP INDEX rate_limit_attempts_ip_live_idx;
DROP INDEX rate_limit_attempts_user_live_idx;
CREATE INDEX rate_limit_attempts_user_action_idx ON rate_limit_attempts (user_id, action, attempted_at) WHERE user_id IS NOT NULL;
CREATE INDEX rate_limit_attempts_ip_action_idx ON rate_limit_attempts (ip, action, attempted_at) WHERE ip IS NOT NULL;
-- warden_rate_limit_check keeps this body: same signature and the same answers with either
-- set of indexes (it reads whichever exist), and 0050's down migration drops it
