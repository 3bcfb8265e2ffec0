import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generatePayloadKeyring } from '../temporal/codec';

function ensureFile(file: string, make: () => string): string {
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, make(), { mode: 0o600 });
  }
  return file;
}

/**
 * Secrets the embedded stack needs and production gets from its secret store: generated once
 * into the data folder (mode 0600) so a second `npm start` keeps working with the same keys.
 * Only variables the environment does not already set are filled in.
 */
export function devSecretsEnv(dataDir: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const dir = path.join(dataDir, 'secrets');
  const out: Record<string, string> = {};
  if (!env.WARDEN_ADMIN_TOKEN) {
    out.WARDEN_ADMIN_TOKEN = readFileSync(
      ensureFile(path.join(dir, 'admin-token'), () => randomBytes(24).toString('base64url')),
      'utf8',
    ).trim();
  }
  if (!env.WARDEN_PAYLOAD_KEYS && !env.WARDEN_PAYLOAD_KEYS_FILE) {
    out.WARDEN_PAYLOAD_KEYS_FILE = ensureFile(path.join(dir, 'payload-keys.json'), generatePayloadKeyring);
  }
  if (!env.WARDEN_KEYRING && !env.WARDEN_KEYRING_FILE) {
    out.WARDEN_KEYRING_FILE = ensureFile(path.join(dir, 'keyring.json'), generatePayloadKeyring);
  }
  // the delivery canary's email comes back through SendGrid Inbound Parse (in development the
  // sandbox posts it to /callbacks/v1/sendgrid/inbound/<token>): without a token it never would
  const canary = env.WARDEN_CANARY_USER || env.WARDEN_CANARY_USER_FILE;
  if (canary && !env.SENDGRID_INBOUND_TOKEN && !env.SENDGRID_INBOUND_TOKEN_FILE) {
    out.SENDGRID_INBOUND_TOKEN_FILE = ensureFile(path.join(dir, 'sendgrid-inbound-token'), () =>
      randomBytes(24).toString('hex'),
    );
  }
  if (!env.SLACK_SIGNING_SECRET && !env.SLACK_CREDENTIALS_FILE) {
    out.SLACK_SIGNING_SECRET = readFileSync(
      ensureFile(path.join(dir, 'slack-signing-secret'), () => randomBytes(16).toString('hex')),
      'utf8',
    ).trim();
  }
  return out;
}
