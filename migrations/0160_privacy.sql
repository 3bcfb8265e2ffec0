-- Up Migration
-- Data-subject requests (docs/privacy.md): a user's export (right of access) and erasure (right
-- to be forgotten), each run by a workflow on the ops task queue.

-- Per-user payload keys (src/privacy/subjectKeys.ts): a Temporal payload that carries a user's
-- data (a top-level `userId`) is encrypted with its user's key before the keyring's, and names
-- the key by `id` in its metadata. The key is stored only wrapped (AES-256-GCM) under a
-- key-encryption key of the keyring (kek_id). Erasure destroys it: the row keeps its id and the
-- time, so a payload it encrypted is reported as erased, and nothing else (subject, key: NULL).
CREATE TABLE user_data_keys (
  id           text PRIMARY KEY CHECK (id ~ '^uk-[0-9a-f-]{36}$'),
  subject      text,
  kek_id       text,
  wrapped_key  bytea,
  created_at   timestamptz NOT NULL DEFAULT now(),
  erased_at    timestamptz,
  CHECK ((erased_at IS NULL) = (subject IS NOT NULL AND kek_id IS NOT NULL AND wrapped_key IS NOT NULL)),
  CHECK (erased_at IS NULL OR (subject IS NULL AND kek_id IS NULL AND wrapped_key IS NULL))
);
CREATE UNIQUE INDEX user_data_keys_subject ON user_data_keys (subject) WHERE subject IS NOT NULL;

-- Exports: one artifact per request, in chunks (like runbook artifacts), with its SHA-256.
-- They are personal data: deleted when they expire (the export's workflow waits for that), and
-- by an erasure of the user. An expired export keeps its id and times only.
CREATE TABLE user_exports (
  id            uuid PRIMARY KEY,
  subject       text,
  format        text NOT NULL CHECK (format IN ('json', 'ndjson')),
  status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ready', 'expired')),
  requested_by  text NOT NULL,
  requested_at  timestamptz NOT NULL DEFAULT now(),
  ready_at      timestamptz,
  expires_at    timestamptz NOT NULL,
  records       integer,
  bytes         bigint,
  sha256        text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  CHECK ((status = 'expired') = (subject IS NULL)),
  CHECK (status <> 'ready' OR (sha256 IS NOT NULL AND ready_at IS NOT NULL))
);
CREATE INDEX user_exports_subject_idx ON user_exports (subject) WHERE subject IS NOT NULL;
CREATE TABLE user_export_chunks (
  export_id  uuid NOT NULL REFERENCES user_exports (id) ON DELETE CASCADE,
  seq        integer NOT NULL,
  body       text NOT NULL,
  PRIMARY KEY (export_id, seq)
);

-- Erasures. While one runs, `subject`, `needles` (the id, phone numbers and addresses searched
-- for in free text) and `pseudonym` (what replaces the id in the audit trail) are kept here so
-- each step can be retried; the last step clears them. What stays is the report (counts) and
-- `subject_digest`, an HMAC of the id under a key derived from the keyring (digest_kek_id), so
-- a repeated request for the same id answers with the report without the id being kept.
CREATE TABLE user_erasures (
  id             uuid PRIMARY KEY,
  subject_digest bytea NOT NULL CHECK (octet_length(subject_digest) = 32),
  digest_kek_id  text NOT NULL,
  subject        text,
  needles        text[],
  pseudonym      text CHECK (pseudonym ~ '^~erased:[0-9a-f-]{36}$'),
  status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
  requested_by   text NOT NULL,
  requested_at   timestamptz NOT NULL DEFAULT now(),
  completed_at   timestamptz,
  report         jsonb NOT NULL DEFAULT '{}'::jsonb,
  CHECK ((status = 'running') = (subject IS NOT NULL AND needles IS NOT NULL AND pseudonym IS NOT NULL)),
  CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
-- one erasure of an id at a time
CREATE UNIQUE INDEX user_erasures_running ON user_erasures (subject) WHERE subject IS NOT NULL;
CREATE INDEX user_erasures_digest ON user_erasures (subject_digest, requested_at);

-- An erasure finds a user's rows by id: the two tables that lacked an index on it get one.
-- Building one blocks writes to its table while it builds; on large tables build them
-- beforehand without blocking, with the same names, and this migration only checks them:
--   CREATE INDEX CONCURRENTLY challenge_validation_attempts_user_idx ON challenge_validation_attempts (user_id);
--   CREATE INDEX CONCURRENTLY delivery_failures_user_idx ON delivery_failures (user_id);
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname IN ('challenge_validation_attempts_user_idx', 'delivery_failures_user_idx')
                AND NOT i.indisvalid) THEN
    RAISE EXCEPTION 'an index of 0160 built beforehand is invalid (a failed CREATE INDEX CONCURRENTLY): drop it and build it again';
  END IF;
END
$$;
CREATE INDEX IF NOT EXISTS challenge_validation_attempts_user_idx ON challenge_validation_attempts (user_id);
CREATE INDEX IF NOT EXISTS delivery_failures_user_idx ON delivery_failures (user_id);

-- `t` with every whole occurrence of each needle replaced: a needle counts only where no
-- character that may belong to an id, a phone number or an address touches it, so erasing `bob`
-- leaves `bobby` alone. Needles are matched literally (every other character is escaped).
CREATE FUNCTION warden_privacy_scrub(t text, needles text[], replacement text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  needle text;
  out text := t;
BEGIN
  IF t IS NULL OR needles IS NULL THEN
    RETURN t;
  END IF;
  FOREACH needle IN ARRAY needles LOOP
    CONTINUE WHEN needle IS NULL OR needle = '' OR strpos(out, needle) = 0;
    out := regexp_replace(out,
      '(?<![A-Za-z0-9._@:+-])' || regexp_replace(needle, '([^A-Za-z0-9])', '\\\1', 'g') || '(?![A-Za-z0-9._@:+-])',
      replacement, 'g');
  END LOOP;
  RETURN out;
END
$$;

-- The audit trail stays append-only (0001, 0130) with a second narrow exception beside
-- retention's: warden_audit_erase() rewrites the rows of one erased user, and only what names
-- them: user_id becomes the erasure's pseudonym (`~erased:<uuid>`, random, kept nowhere once the
-- erasure ends, so the rows stay one subject's without saying whose), the phone's last four and
-- the email's domain go, and the id is scrubbed from details and the dedupe key. When, what,
-- how and with which outcome stay as they were. The subject and pseudonym are named in two
-- transaction-local settings the trigger reads, so no other statement can change a row, and a
-- row can never be made to name another real user.
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND OLD.id <= coalesce(nullif(current_setting('warden.audit_retention_through', true), '')::bigint, 0)
     AND OLD.occurred_at < coalesce(nullif(current_setting('warden.audit_retention_before', true), '')::timestamptz,
                                    '-infinity'::timestamptz)
  THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE'
     AND OLD.user_id = nullif(current_setting('warden.audit_erase_subject', true), '')
     AND NEW.user_id = nullif(current_setting('warden.audit_erase_pseudonym', true), '')
     AND NEW.user_id LIKE '~erased:%'
     AND NEW.phone_last4 IS NULL AND NEW.email_domain IS NULL
     AND (NEW.id, NEW.occurred_at, NEW.event_type, NEW.outcome, NEW.reason, NEW.challenge_id, NEW.method,
          NEW.ip_masked, NEW.incident_id)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.occurred_at, OLD.event_type, OLD.outcome, OLD.reason, OLD.challenge_id, OLD.method,
          OLD.ip_masked, OLD.incident_id)
  THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

-- Rewrites at most p_limit of the rows naming p_subject (found through audit_events_user_idx);
-- returns how many. Fewer than p_limit: none is left.
CREATE FUNCTION warden_audit_erase(p_subject text, p_pseudonym text, p_needles text[], p_limit int) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  n bigint;
BEGIN
  IF coalesce(p_subject, '') = '' OR p_pseudonym IS NULL OR p_pseudonym NOT LIKE '~erased:%' THEN
    RAISE EXCEPTION 'warden_audit_erase needs a subject and an ~erased: pseudonym';
  END IF;
  PERFORM set_config('warden.audit_erase_subject', p_subject, true);
  PERFORM set_config('warden.audit_erase_pseudonym', p_pseudonym, true);
  UPDATE audit_events a
     SET user_id = p_pseudonym, phone_last4 = NULL, email_domain = NULL,
         details = warden_privacy_scrub(a.details::text, p_needles, p_pseudonym)::jsonb,
         dedupe_key = warden_privacy_scrub(a.dedupe_key, p_needles, p_pseudonym)
   WHERE a.id = ANY (ARRAY (SELECT id FROM audit_events WHERE user_id = p_subject ORDER BY id LIMIT p_limit));
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('warden.audit_erase_subject', '', true);
  PERFORM set_config('warden.audit_erase_pseudonym', '', true);
  RETURN n;
END
$$;

-- Down Migration
DROP FUNCTION warden_audit_erase(text, text, text[], int);
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
DROP FUNCTION warden_privacy_scrub(text, text[], text);
DROP INDEX delivery_failures_user_idx;
DROP INDEX challenge_validation_attempts_user_idx;
DROP TABLE user_erasures;
DROP TABLE user_export_chunks;
DROP TABLE user_exports;
DROP TABLE user_data_keys;
