-- Up Migration
-- The destination budget (src/auth/budgets.ts, docs/security.md): how many messages one phone
-- number or email address may be sent per rolling hour and per rolling day, whoever asks (any
-- user, app or address). Each initiate or resend that passes writes one row; a refusal writes
-- none here (it is audited). `destination` is the SHA-256 of `sms:<E.164>` or
-- `email:<lower-cased address>`, never the address: the budget is kept without copying contacts
-- into one more table. A user without an address for the channel (unknown, disabled, no phone)
-- is counted under `decoy:<method>:<user id>`, so that a sign-in for them is refused exactly
-- when one for a real user would be: the answer never tells whether the account exists.
-- `device_sha256` is set for a device the account has signed in from (0171): its messages have
-- a budget of their own, so a stranger who spends the shared one does not cut the owner off.
CREATE TABLE destination_sends (
  id             bigserial PRIMARY KEY,
  destination    bytea NOT NULL,
  device_sha256  bytea,
  sent_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX destination_sends_key_idx ON destination_sends (destination, sent_at);
CREATE INDEX destination_sends_time_idx ON destination_sends (sent_at);

-- Checks and records one message for the user's address on the method's channel, atomically
-- (the rules of warden_rate_limit_check, 0050 and 0060): an advisory lock per destination and
-- bucket serialises concurrent requests until the calling statement's transaction commits, the
-- counts after it take a fresh snapshot and stop at the limit, so a burst admits exactly the
-- budget and a check reads at most the budget's worth of rows. Returns whether the message may
-- be sent, its row (to give it back when nothing was sent after all) or which window refused it
-- and in how many seconds that window frees a slot.
CREATE FUNCTION warden_destination_budget_check(
  p_user text, p_method text, p_device bytea,
  p_hour_window int, p_hour_max int, p_day_window int, p_day_max int
) RETURNS TABLE (allowed boolean, send_id bigint, scope text, retry_after int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_address text;
  v_key bytea;
  v_id bigint;
  hour_n int;
  hour_oldest timestamptz;
  day_n int;
  day_oldest timestamptz;
BEGIN
  SELECT CASE WHEN p_method = 'sms_otp' THEN 'sms:' || u.phone ELSE 'email:' || lower(u.email) END
    INTO v_address
    FROM users u WHERE u.sub = p_user AND u.disabled_at IS NULL;
  v_key := sha256(convert_to(coalesce(v_address, 'decoy:' || p_method || ':' || p_user), 'UTF8'));
  PERFORM pg_advisory_xact_lock(hashtextextended(
    'warden:destination:' || encode(v_key, 'hex') || ':' || coalesce(encode(p_device, 'hex'), ''), 0));

  SELECT count(*)::int, min(t) INTO hour_n, hour_oldest FROM (
    SELECT sent_at AS t FROM destination_sends
     WHERE destination = v_key AND device_sha256 IS NOT DISTINCT FROM p_device
       AND sent_at > now() - make_interval(secs => p_hour_window)
     ORDER BY sent_at LIMIT p_hour_max) AS counted;
  SELECT count(*)::int, min(t) INTO day_n, day_oldest FROM (
    SELECT sent_at AS t FROM destination_sends
     WHERE destination = v_key AND device_sha256 IS NOT DISTINCT FROM p_device
       AND sent_at > now() - make_interval(secs => p_day_window)
     ORDER BY sent_at LIMIT p_day_max) AS counted;

  IF hour_n >= p_hour_max THEN
    RETURN QUERY SELECT false, NULL::bigint, 'hour'::text,
      greatest(1, ceil(extract(epoch FROM hour_oldest + make_interval(secs => p_hour_window) - now()))::int);
  ELSIF day_n >= p_day_max THEN
    RETURN QUERY SELECT false, NULL::bigint, 'day'::text,
      greatest(1, ceil(extract(epoch FROM day_oldest + make_interval(secs => p_day_window) - now()))::int);
  ELSE
    INSERT INTO destination_sends (destination, device_sha256) VALUES (v_key, p_device) RETURNING id INTO v_id;
    RETURN QUERY SELECT true, v_id, NULL::text, NULL::int;
  END IF;
END
$$;

-- Down Migration
DROP FUNCTION warden_destination_budget_check(text, text, bytea, int, int, int, int);
DROP TABLE destination_sends;
