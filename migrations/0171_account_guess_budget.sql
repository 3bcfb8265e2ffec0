-- Up Migration
-- The account guess budget (src/auth/budgets.ts, docs/security.md): wrong SMS codes per
-- account across all its challenges and all client addresses, with a backoff after a few and a
-- small daily budget, and the devices an account has signed in from, which are held to budgets
-- of their own so that a stranger spending the shared ones never locks the owner out.

-- A browser that signed in to the account: the SHA-256 of its `warden_trust` cookie (a random
-- value set on a successful sign-in), never the value. A browser signed in to several accounts
-- has one row per account. Rows not refreshed by a sign-in for the cookie's lifetime are dead.
CREATE TABLE trusted_devices (
  user_id        text NOT NULL,
  device_sha256  bytea NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_seen_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_sha256)
);
CREATE INDEX trusted_devices_seen_idx ON trusted_devices (last_seen_at);

-- One row per verify that reached the comparison of a code: `pending` while it is compared (a
-- guess in flight counts, so a burst cannot overshoot), then `wrong` or `right`; a verify that
-- turned out to compare nothing (the challenge had ended) is deleted. `device_sha256`: the
-- trusted device's own budget; NULL is the budget every stranger shares.
CREATE TABLE account_guesses (
  id             bigserial PRIMARY KEY,
  user_id        text NOT NULL,
  device_sha256  bytea,
  outcome        text NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'wrong', 'right')),
  guessed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_guesses_user_idx ON account_guesses (user_id, guessed_at);
CREATE INDEX account_guesses_time_idx ON account_guesses (guessed_at);

-- Takes one guess from the account's budget (its bucket: a trusted device's, or the shared one),
-- atomically under an advisory lock per bucket. Refused with `budget` when the window already
-- holds p_max guesses that were not right (Retry-After: when the oldest leaves it), or with
-- `backoff` when the guesses not right since the last right one number at least p_free and the
-- newest is younger than its delay: p_steps[k] seconds after the (p_free + k - 1)-th, the last
-- step repeating (the schedule is src/auth/budgets.ts's backoffSteps). A refusal writes nothing:
-- it is not a guess.
CREATE FUNCTION warden_guess_reserve(
  p_user text, p_device bytea, p_window int, p_max int, p_free int, p_steps int[]
) RETURNS TABLE (allowed boolean, guess_id bigint, scope text, retry_after int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_id bigint;
  v_counted int;
  v_oldest timestamptz;
  v_last_right timestamptz;
  v_streak int;
  v_newest timestamptz;
  v_delay int;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(
    'warden:guess:' || p_user || ':' || coalesce(encode(p_device, 'hex'), ''), 0));

  SELECT count(*)::int, min(t) INTO v_counted, v_oldest FROM (
    SELECT guessed_at AS t FROM account_guesses
     WHERE user_id = p_user AND device_sha256 IS NOT DISTINCT FROM p_device AND outcome <> 'right'
       AND guessed_at > now() - make_interval(secs => p_window)
     ORDER BY guessed_at LIMIT p_max) AS counted;
  IF v_counted >= p_max THEN
    RETURN QUERY SELECT false, NULL::bigint, 'budget'::text,
      greatest(1, ceil(extract(epoch FROM v_oldest + make_interval(secs => p_window) - now()))::int);
    RETURN;
  END IF;

  SELECT max(guessed_at) INTO v_last_right FROM account_guesses
   WHERE user_id = p_user AND device_sha256 IS NOT DISTINCT FROM p_device AND outcome = 'right'
     AND guessed_at > now() - make_interval(secs => p_window);
  SELECT count(*)::int, max(guessed_at) INTO v_streak, v_newest FROM account_guesses
   WHERE user_id = p_user AND device_sha256 IS NOT DISTINCT FROM p_device AND outcome <> 'right'
     AND guessed_at > greatest(coalesce(v_last_right, '-infinity'::timestamptz), now() - make_interval(secs => p_window));
  IF v_streak >= p_free AND cardinality(p_steps) > 0 THEN
    v_delay := p_steps[least(v_streak - p_free + 1, cardinality(p_steps))];
    IF v_newest + make_interval(secs => v_delay) > now() THEN
      RETURN QUERY SELECT false, NULL::bigint, 'backoff'::text,
        greatest(1, ceil(extract(epoch FROM v_newest + make_interval(secs => v_delay) - now()))::int);
      RETURN;
    END IF;
  END IF;

  INSERT INTO account_guesses (user_id, device_sha256) VALUES (p_user, p_device) RETURNING id INTO v_id;
  RETURN QUERY SELECT true, v_id, NULL::text, NULL::int;
END
$$;

-- Down Migration
DROP FUNCTION warden_guess_reserve(text, bytea, int, int, int, int[]);
DROP TABLE account_guesses;
DROP TABLE trusted_devices;
