/**
 * The generators of the endpoint fuzzer: hostile strings, JSON of every shape, bodies that
 * lie about their content type, odd query strings and path parameters. Field names come from
 * the API's own schemas (read from src/api), so shaped bodies reach past "unknown field".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';

function apiFieldNames(): string[] {
  const root = join(__dirname, '../../src/api');
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(
          /\b([A-Za-z][A-Za-z0-9_]*)\??:\s*(?:Type\.|\{\s*type:|[A-Z]\w*\b(?!\.))/g,
        ))
          names.add(m[1]!);
      }
    }
  };
  walk(root);
  return [...names];
}

/** Fields the providers and integrations send that no schema names (their routes parse by hand). */
const FOREIGN_FIELDS = [
  'command',
  'text',
  'user_id',
  'user_name',
  'channel_id',
  'payload',
  'actions',
  'action_id',
  'value',
  'groupKey',
  'alerts',
  'labels',
  'payloads',
  'MessageSid',
  'MessageStatus',
  'SmsSid',
  'SmsStatus',
  'ErrorCode',
  'MessageUUID',
  'Status',
  'event',
  'sg_message_id',
  'idempotency_key',
  'Type',
  'Message',
  'SubscribeURL',
  'eventType',
  'mail',
  'bounce',
  'code',
  'token',
  'challenge',
  '__proto__',
  'constructor',
];

export const FIELD_NAMES = [...new Set([...apiFieldNames(), ...FOREIGN_FIELDS])];

const SPECIAL = [
  '',
  ' ',
  'null',
  'undefined',
  'true',
  '0',
  '-1',
  '1e309',
  'NaN',
  '9'.repeat(30),
  '../../etc/passwd',
  '%',
  '%zz',
  '%00',
  '\u0000',
  '\u202e',
  '\ud800',
  '💥🔥',
  "' OR 1=1 --",
  '<script>alert(1)</script>',
  '{"a":',
  'sms',
  'email',
  'twilio',
  'plivo',
  'sendgrid',
  'ses',
  'primary',
  'backup',
  'P0',
  'P3',
  'INC-2020-01-01-01',
  'compromised-token',
  'abuse-mitigation',
  'provider-outage',
  'db-failover',
  'test-user',
  'alice',
  '127.0.0.1:5432',
  '10.0.0.0/8',
  '/incident',
  'block_actions',
  'firing',
  'resolved',
  'delivered',
  'failed',
  'Notification',
  'SubscriptionConfirmation',
  '2020-01-01T00:00:00Z',
];

export const hostileString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(...SPECIAL),
  fc.uuid(),
);

/** Strings up to several times the public body limit (64 KiB). */
const hugeString = fc
  .integer({ min: 1_000, max: 200_000 })
  .chain((n) => fc.constantFrom('a'.repeat(n), '€'.repeat(Math.ceil(n / 3)), '\u0000'.repeat(n)));

const fieldName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...FIELD_NAMES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

export const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.constantFrom(0, -1, 1, 2 ** 53, -(2 ** 31), 1e308),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fieldName, tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** Objects with the API's own field names and values of any type: past "unknown field", into the handlers. */
const shapedObject = fc.dictionary(
  fieldName,
  fc.oneof(
    jsonValue,
    hugeString.map((s) => s.slice(0, 5000)),
  ),
  { minKeys: 1, maxKeys: 6 },
);

export interface FuzzBody {
  payload?: string | Buffer;
  contentType?: string;
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/x-www-form-urlencoded',
  'text/plain',
  'text/plain; charset=UTF-8',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/octet-stream',
  'application/json; charset=latin1',
  'application/vnd.api+json',
  ';;;',
];

const form = (fields: Record<string, unknown>) => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) params.append(k, typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  return params.toString();
};

export const fuzzBody: fc.Arbitrary<FuzzBody> = fc.oneof(
  fc.constant({}),
  jsonValue.map((v) => ({ payload: JSON.stringify(v) ?? 'null', contentType: 'application/json' })),
  shapedObject.map((o) => ({ payload: JSON.stringify(o), contentType: 'application/json' })),
  fc.record({
    payload: fc.oneof(
      hostileString,
      fc.constantFrom('{', '[1,', '{"a":1}garbage', 'a=1&b=2', '\u0000\u0001', '{"__proto__":{"x":1}}'),
    ),
    contentType: fc.constantFrom(...CONTENT_TYPES),
  }),
  shapedObject.map((o) => ({ payload: form(o), contentType: 'application/x-www-form-urlencoded' })),
  fc
    .tuple(fc.dictionary(fieldName, hostileString, { maxKeys: 5 }), fc.constantFrom(...CONTENT_TYPES))
    .map(([o, contentType]) => ({ payload: form(o), contentType })),
  fc.uint8Array({ maxLength: 300 }).map((b) => ({ payload: Buffer.from(b), contentType: 'application/octet-stream' })),
  fc.tuple(hugeString, fc.constantFrom(...CONTENT_TYPES)).map(([s, contentType]) => ({
    payload: contentType.includes('json') ? JSON.stringify({ user_id: s, payloads: [s] }) : s,
    contentType,
  })),
);

/** A query string: random and schema field names, repeated keys, broken escapes. */
export const fuzzQuery: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.tuple(
        fieldName,
        fc.oneof(
          hostileString,
          hugeString.map((s) => s.slice(0, 3000)),
        ),
      ),
      { maxLength: 5 },
    )
    .map((pairs) =>
      pairs.map(([k, v]) => `${encodeURIComponent(wellFormed(k))}=${encodeURIComponent(wellFormed(v))}`).join('&'),
    ),
  fc.constantFrom(
    '%',
    '%zz=1',
    'a[b]=1&a=2',
    '&&&',
    '=x',
    'limit=-1',
    'limit=1e400',
    'limit=abc',
    'since=notadate',
    'token=',
    'challenge=&token=',
    'limit=1&limit=2',
    'status=x&status=y',
  ),
);

/** A path parameter value, percent-encoded (or left raw where it is URL-safe). */
export const fuzzParam: fc.Arbitrary<string> = fc.oneof(
  hostileString.map((s) => encodeURIComponent(wellFormed(s))),
  fc.constantFrom('%', '%zz', '%00', '..', '.', 'a%2Fb', '%2e%2e', 'x'.repeat(120)),
);

/** encodeURIComponent refuses lone surrogates; a client would send U+FFFD instead. */
export function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}
