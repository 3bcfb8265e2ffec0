-- Up Migration
-- IPv6 clients are counted per /64 (their bucket, src/auth/ipBucket.ts), and each /48 has a
-- budget of its own: WARDEN_RATE_LIMIT_V6_48_FACTOR times the per-IP limit in the per-IP window,
-- so rotating through the /64s of one /48 does not escape the per-IP limit. The caller passes
-- the bucket as p_ip (IPv4 as is, IPv6 as `x:x:x:x::/64`) and the /48 as p_prefix (NULL for
-- IPv4, and for callers that do not name one: the check is then what it was).
--
-- A /48 is a scope of its own rows, as users and buckets are: an admitted IPv6 attempt writes
-- one row for its bucket and one for its /48 (`ip` = `x:x:x::/48`), so the /48 count is an
-- equality lookup on the live index like the others, stopping at its limit. Refusals are
-- recorded on the bucket only (the client refused, whichever limit refused it), so the readers
-- of refused rows (the CAPTCHA gate, the abuse runbook) see buckets, never /48s. Locks: user,
-- then /48, then bucket, the same order for every caller, so no two requests wait in a cycle.
DROP FUNCTION warden_rate_limit_check(text, text, text, inet, text, int, int, int, int);
CREATE FUNCTION warden_rate_limit_check(
  p_user_lock text, p_ip_lock text,
  p_user text, p_ip inet, p_action text,
  p_user_window int, p_user_max int, p_ip_window int, p_ip_max int,
  p_prefix inet DEFAULT NULL, p_prefix_lock text DEFAULT NULL, p_prefix_max int DEFAULT NULL
) RETURNS TABLE (allowed boolean, scope text, retry_after int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  user_n int := 0;
  user_oldest timestamptz;
  ip_n int;
  ip_oldest timestamptz;
  prefix_n int := 0;
  prefix_oldest timestamptz;
BEGIN
  IF p_user IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user_lock, 0));
  END IF;
  IF p_prefix IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_prefix_lock, 0));
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended(p_ip_lock, 0));

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
  IF p_prefix IS NOT NULL THEN
    SELECT count(*)::int, min(t) INTO prefix_n, prefix_oldest FROM (
      SELECT attempted_at AS t FROM rate_limit_attempts
       WHERE ip = p_prefix AND action = p_action AND NOT exceeded
         AND attempted_at > now() - make_interval(secs => p_ip_window)
       ORDER BY attempted_at LIMIT p_prefix_max) AS counted;
  END IF;

  IF p_user IS NOT NULL AND user_n >= p_user_max THEN
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (p_user, NULL, p_action, true);
    RETURN QUERY SELECT false, 'user'::text,
      greatest(1, coalesce(ceil(extract(epoch FROM user_oldest + make_interval(secs => p_user_window) - now()))::int, 1));
  ELSIF ip_n >= p_ip_max THEN
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (NULL, p_ip, p_action, true);
    RETURN QUERY SELECT false, 'ip'::text,
      greatest(1, coalesce(ceil(extract(epoch FROM ip_oldest + make_interval(secs => p_ip_window) - now()))::int, 1));
  ELSIF p_prefix IS NOT NULL AND prefix_n >= p_prefix_max THEN
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (NULL, p_ip, p_action, true);
    RETURN QUERY SELECT false, 'ip_prefix'::text,
      greatest(1, coalesce(ceil(extract(epoch FROM prefix_oldest + make_interval(secs => p_ip_window) - now()))::int, 1));
  ELSE
    INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (NULL, p_ip, p_action, false);
    IF p_prefix IS NOT NULL THEN
      INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (NULL, p_prefix, p_action, false);
    END IF;
    IF p_user IS NOT NULL THEN
      INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES (p_user, NULL, p_action, false);
    END IF;
    RETURN QUERY SELECT true, NULL::text, NULL::int;
  END IF;
END
$$;

-- Down Migration
DROP FUNCTION warden_rate_limit_check(text, text, text, inet, text, int, int, int, int, inet, text, int);
-- the body of 0060
CREATE FUNCTION warden_rate_limit_check(
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
