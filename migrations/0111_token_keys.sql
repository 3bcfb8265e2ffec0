-- Up Migration
-- The keys that sign the tokens Warden issues to apps (src/auth/tokenKeys.ts, docs/tokens.md):
-- ES256 (P-256) key pairs. The public JWK is stored in clear (it is published at
-- /.well-known/jwks.json); the private JWK only wrapped (AES-256-GCM) under a key-encryption key
-- of the keyring, named by kek_id. Exactly one key is active and signs; a retired key signs
-- nothing more but stays published until published_until, the expiry of the last token it can
-- have signed, and may be deleted after that.
CREATE TABLE token_signing_keys (
  kid             text PRIMARY KEY,
  alg             text NOT NULL CHECK (alg = 'ES256'),
  public_jwk      jsonb NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object' AND NOT public_jwk ? 'd'),
  wrapped_private bytea NOT NULL,
  kek_id          text NOT NULL,
  status          text NOT NULL CHECK (status IN ('active', 'retired')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  retired_at      timestamptz,
  published_until timestamptz,
  CHECK (status = 'active' OR (retired_at IS NOT NULL AND published_until IS NOT NULL))
);
CREATE UNIQUE INDEX token_signing_keys_one_active ON token_signing_keys (status) WHERE status = 'active';

-- A rotation (rotateKeys) turns the token signing key over with the data key: its history
-- names both kids, so a retried rotation answers with what its first attempt did.
ALTER TABLE key_rotations
  ADD COLUMN from_token_kid text,
  ADD COLUMN to_token_kid text;

-- Down Migration
ALTER TABLE key_rotations DROP COLUMN to_token_kid, DROP COLUMN from_token_kid;
DROP TABLE token_signing_keys;
