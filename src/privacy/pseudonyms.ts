/**
 * The names Warden gives a user where their id must not appear (docs/privacy.md):
 * - in log lines, a keyed pseudonym (`~` and 16 hex digits of an HMAC under a key derived
 *   from the keyring): lines of one user still correlate, a line alone names nobody, and
 *   nothing written to stdout needs to be taken back when the user is erased;
 * - in an erasure's record, a digest under another derived key, so a repeated request for the
 *   same id finds its report without the id being kept;
 * - in the audit trail after an erasure, a random pseudonym that is kept nowhere.
 * The `~` never starts a user id (SUB_PATTERN), so a pseudonym is never mistaken for one.
 */
import { createHmac, hkdfSync, randomUUID } from 'node:crypto';
import type { Logger } from '../telemetry/logger';
import type { Keyring } from '../crypto/keyring';

const LOG_INFO = 'warden:log-pseudonym';
const DIGEST_INFO = 'warden:erasure-subject';

function derive(key: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), info, 32));
}

/** `~` + 16 hex digits: the user as log lines name them. */
export function logPseudonym(key: Buffer, subject: string): string {
  return `~${createHmac('sha256', key).update(subject, 'utf8').digest('hex').slice(0, 16)}`;
}

/** The log pseudonym key: derived from the keyring's active key (a rotation starts new pseudonyms). */
export function logPseudonymKey(kek: Keyring): Buffer {
  return derive(kek.keys.get(kek.activeKeyId)!, LOG_INFO);
}

/** Log fields that hold a user id (one or a list). */
const USER_FIELDS = ['user_id', 'userId', 'user_ids', 'userIds'] as const;

/**
 * A child of `logger` whose lines never carry a user id in clear: the fields that hold one are
 * pseudonymized by the logger's configuration (pino serializers), whoever logs them.
 */
export function pseudonymizingLogger(logger: Logger, kek: Keyring): Logger {
  const key = logPseudonymKey(kek);
  const one = (value: unknown) => (typeof value === 'string' && value !== '' ? logPseudonym(key, value) : value);
  const serialize = (value: unknown) => (Array.isArray(value) ? value.map(one) : one(value));
  return logger.child({}, { serializers: Object.fromEntries(USER_FIELDS.map((field) => [field, serialize])) });
}

/** The subject digest under each key of the keyring: what an earlier erasure may have stored. */
export function subjectDigests(kek: Keyring, subject: string): Buffer[] {
  return [...kek.keys.values()].map((key) =>
    createHmac('sha256', derive(key, DIGEST_INFO)).update(subject, 'utf8').digest(),
  );
}

/** The digest a new erasure stores, under the active key. */
export function subjectDigest(kek: Keyring, subject: string): { digest: Buffer; kekId: string } {
  const key = derive(kek.keys.get(kek.activeKeyId)!, DIGEST_INFO);
  return { digest: createHmac('sha256', key).update(subject, 'utf8').digest(), kekId: kek.activeKeyId };
}

/** A fresh pseudonym for one erasure's audit rows. */
export function erasurePseudonym(): string {
  return `~erased:${randomUUID()}`;
}
