-- Up Migration
-- The rate-limit check and record (src/auth/rateLimit.ts) in one statement instead of a
-- six-round-trip transaction (BEGIN, two advisory locks, the counts, the insert, COMMIT); every
-- initiate, resend and verify makes one. Same rules: the advisory locks (user first, then IP,
-- keyed by the caller) serialise concurrent requests for a subject until the statement's
-- transaction commits, each count takes a fresh snapshot after the locks, refused requests are
-- recorded as `exceeded` rows that do not count. Returns whether the request may go on and,
-- if not, which scope refused it and in how many seconds its window frees a slot.
CREATE FUNCTION warden_rate_limit_check(
  p_user_lock text, p_ip_lock text,
  p_user text, p_ip inet, p_action text,
  p_user_window int, p_user_max int, p_ip_window int, p_ip_max int
) RETURNS TABLE (allowed boolean, scope text, retry_after int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  user_n int := 0;
  user_retry int;
  ip_n int;
  ip_retry int;
BEGIN
  IF p_user IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user_lock, 0));
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended(p_ip_lock, 0));

  IF p_user IS NOT NULL THEN
    SELECT count(*)::int, ceil(extract(epoch FROM min(attempted_at) + make_interval(secs => p_user_window) - now()))::int
      INTO user_n, user_retry
      FROM rate_limit_attempts
     WHERE user_id = p_user AND action = p_action AND NOT exceeded
       AND attempted_at > now() - make_interval(secs => p_user_window);
  END IF;
  SELECT count(*)::int, ceil(extract(epoch FROM min(attempted_at) + make_interval(secs => p_ip_window) - now()))::int
    INTO ip_n, ip_retry
    FROM rate_limit_attempts
   WHERE ip = p_ip AND action = p_action AND NOT exceeded
     AND attempted_at > now() - make_interval(secs => p_ip_window);

  IF p_user IS NOT NULL AND user_n >= p_user_max THEN
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (p_user, NULL, p_action, true);
    RETURN QUERY SELECT false, 'user'::text, greatest(1, coalesce(user_retry, 1));
  ELSIF ip_n >= p_ip_max THEN
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (NULL, p_ip, p_action, true);
    RETURN QUERY SELECT false, 'ip'::text, greatest(1, coalesce(ip_retry, 1));
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
DROP FUNCTION warden_rate_limit_check(text, text, text, inet, text, int, int, int, int);
