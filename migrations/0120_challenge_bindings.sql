-- Up Migration
-- Sign-ins that belong to an app (docs/apps.md). A challenge is bound at initiate to the app
-- that asked and to whoever may turn its verification into an authorization code: the holder
-- of a PKCE verifier (the app sent its S256 `code_challenge`), the browser holding Warden's
-- device cookie (only its SHA-256 is kept), or both. Written with the challenge row, in the
-- same transaction, by the challenge workflow's issue.
CREATE TABLE challenge_bindings (
  challenge_id   uuid PRIMARY KEY REFERENCES auth_challenges (id) ON DELETE CASCADE,
  client_id      text NOT NULL,
  -- 'browser': initiated through the public API; 'server': by the app's backend with its key
  origin         text NOT NULL CHECK (origin IN ('browser', 'server')),
  code_challenge text CHECK (code_challenge ~ '^[A-Za-z0-9_-]{43}$'),
  device_sha256  bytea CHECK (octet_length(device_sha256) = 32),
  redirect_uri   text,
  state          text,
  nonce          text,
  -- set by the one exchange the challenge allows
  exchanged_at   timestamptz
);
CREATE INDEX challenge_bindings_client_idx ON challenge_bindings (client_id);

-- One-time authorization codes: released to the binding's holder once the challenge is
-- verified, exchanged once by the app's backend (POST /oauth/token) for a signed token. Only
-- the code's SHA-256 is stored. A release supersedes the challenge's earlier unexchanged codes.
CREATE TABLE auth_codes (
  code_sha256   bytea PRIMARY KEY CHECK (octet_length(code_sha256) = 32),
  challenge_id  uuid NOT NULL REFERENCES challenge_bindings (challenge_id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  superseded_at timestamptz,
  exchanged_at  timestamptz
);
CREATE INDEX auth_codes_challenge_idx ON auth_codes (challenge_id);
CREATE INDEX auth_codes_expires_idx ON auth_codes (expires_at);

-- Down Migration
DROP TABLE auth_codes;
DROP TABLE challenge_bindings;
