-- Up Migration
-- Registered applications (clients): every sign-in belongs to one (src/auth/apps.ts,
-- docs/apps.md). An app names where a sign-in may return to (redirect_uris, matched exactly),
-- which browser origins may call Warden for it (web_origins), the methods it may use, the
-- lifetime of the tokens issued to it, and optional limits of its own on initiates and
-- verifies across all its users. Apps are disabled, never deleted, so the audit trail and the
-- challenges that name one keep meaning something. The service checks every field with a
-- message naming it; the constraints here are the backstop that keeps the table sound.

-- Each URL is an absolute https URL, or http on a loopback host (127.0.0.1, [::1],
-- localhost) only, without a fragment. Case-insensitive like the parser the service uses.
CREATE FUNCTION warden_app_urls_ok(urls text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(bool_and(
           position('#' IN u) = 0 AND u !~ '\s'
           AND (u ~* '^https://[^/?]+' OR u ~* '^http://(127\.0\.0\.1|\[::1\]|localhost)(:[0-9]{1,5})?([/?].*)?$')),
         true)
    FROM unnest(urls) AS u
$$;

CREATE TABLE apps (
  client_id                text PRIMARY KEY CHECK (client_id ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
  name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  redirect_uris            text[] NOT NULL DEFAULT '{}' CHECK (warden_app_urls_ok(redirect_uris)),
  web_origins              text[] NOT NULL DEFAULT '{}'
                           CHECK (warden_app_urls_ok(web_origins)
                                  AND array_position(web_origins, NULL) IS NULL),
  methods                  text[] NOT NULL
                           CHECK (cardinality(methods) >= 1 AND methods <@ ARRAY['sms_otp', 'magic_link']),
  token_ttl_seconds        int NOT NULL DEFAULT 900 CHECK (token_ttl_seconds BETWEEN 60 AND 86400),
  -- a limit is a window and a count, both or neither (NULL: no limit of the app's own)
  initiate_window_seconds  int CHECK (initiate_window_seconds BETWEEN 1 AND 86400),
  initiate_max_attempts    int CHECK (initiate_max_attempts >= 1),
  verify_window_seconds    int CHECK (verify_window_seconds BETWEEN 1 AND 86400),
  verify_max_attempts      int CHECK (verify_max_attempts >= 1),
  created_by               text NOT NULL,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  disabled_at              timestamptz,
  CHECK ((initiate_window_seconds IS NULL) = (initiate_max_attempts IS NULL)),
  CHECK ((verify_window_seconds IS NULL) = (verify_max_attempts IS NULL)),
  CHECK (array_position(redirect_uris, NULL) IS NULL)
);

-- An app's API keys (`wak_` and 43 base64url characters), shown once when created; only the
-- SHA-256 digest is kept, like operators' tokens (0080). Several may be live at once, so a key
-- is rotated by creating the next one, moving the app to it, and revoking the old one.
CREATE TABLE app_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  client_id    text NOT NULL REFERENCES apps (client_id),
  key_sha256   bytea NOT NULL UNIQUE,
  -- the key's first characters, to tell an app's keys apart in a listing
  hint         text NOT NULL,
  label        text,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX app_keys_client ON app_keys (client_id);

-- Per-app rate limits. The per-user and per-IP limits live in rate_limit_attempts, whose other
-- readers (the abuse runbook's violation counts and cursor, the captcha gate) count every
-- refused row in it: app rows there would change what they see. So an app's attempts get a
-- table of their own with the same rules as warden_rate_limit_check (0050, 0060): one row per
-- attempt, refused ones kept as `exceeded` and not counted, a count that stops at the limit.
-- No foreign key: every initiate and verify writes here, and apps are never deleted.
CREATE TABLE app_rate_limit_attempts (
  id            bigserial PRIMARY KEY,
  client_id     text NOT NULL,
  action        text NOT NULL CHECK (action IN ('initiate', 'verify')),
  exceeded      boolean NOT NULL DEFAULT false,
  attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX app_rate_limit_attempts_live_idx ON app_rate_limit_attempts (client_id, action, attempted_at) WHERE NOT exceeded;
CREATE INDEX app_rate_limit_attempts_time_idx ON app_rate_limit_attempts (attempted_at);

-- Checks and records one attempt of an app, atomically: the advisory lock (keyed by app and
-- action) serialises concurrent checks of the app until the calling statement's transaction
-- commits, and the count after it takes a fresh snapshot, so a burst cannot overshoot. Returns
-- whether the attempt may go on and, if not, in how many seconds the window frees a slot.
CREATE FUNCTION warden_app_rate_limit_check(p_client text, p_action text, p_window int, p_max int)
RETURNS TABLE (allowed boolean, retry_after int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  n int;
  oldest timestamptz;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('warden:ratelimit:app:' || p_action || ':' || p_client, 0));
  SELECT count(*)::int, min(t) INTO n, oldest FROM (
    SELECT attempted_at AS t FROM app_rate_limit_attempts
     WHERE client_id = p_client AND action = p_action AND NOT exceeded
       AND attempted_at > now() - make_interval(secs => p_window)
     ORDER BY attempted_at LIMIT p_max) AS counted;
  IF n >= p_max THEN
    INSERT INTO app_rate_limit_attempts (client_id, action, exceeded) VALUES (p_client, p_action, true);
    RETURN QUERY SELECT false,
      greatest(1, coalesce(ceil(extract(epoch FROM oldest + make_interval(secs => p_window) - now()))::int, 1));
  ELSE
    INSERT INTO app_rate_limit_attempts (client_id, action, exceeded) VALUES (p_client, p_action, false);
    RETURN QUERY SELECT true, NULL::int;
  END IF;
END
$$;

-- Down Migration
DROP FUNCTION warden_app_rate_limit_check(text, text, int, int);
DROP TABLE app_rate_limit_attempts;
DROP TABLE app_keys;
DROP TABLE apps;
DROP FUNCTION warden_app_urls_ok(text[]);
