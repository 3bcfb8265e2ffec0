/**
 * The recovery checklist's verdicts on a canary run (src/canary/verdict.ts,
 * src/activities/checklistCanary.ts), the plaintext scan's matching
 * (src/incidents/plaintextScan.ts) and the development secret the email canary needs
 * (src/dev/secrets.ts). No services: the integration tests run the same paths for real.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canaryVerdicts, checklistCanaryId, type CanaryRunView } from '../../src/activities/checklistCanary';
import { describeChecks, judgeWrongSecret, tamperedToken, wrongCode } from '../../src/canary/verdict';
import { devSecretsEnv } from '../../src/dev/secrets';
import { PlaintextScan } from '../../src/incidents/plaintextScan';

const refused = { verdict: 'refused' as const, answer: '401 invalid_otp' };
const clean = { found: [], scanned: ['3 audit rows', '2 workflow histories (12 payloads, decoded)'] };
const run = (over: Partial<CanaryRunView> = {}): CanaryRunView => ({
  channel: 'sms',
  workflowId: 'canary-checklist-INC-1-sms-1',
  user: 'canary-operator',
  outcome: 'success',
  latencyMs: 1234,
  detail: null,
  checks: { wrongSecret: refused, plaintext: clean },
  ...over,
});
const statuses = (v: ReturnType<typeof canaryVerdicts>) =>
  Object.fromEntries(Object.entries(v).map(([k, i]) => [k, [i.id, i.status]]));

describe('the wrong secret a checklist canary run submits first', () => {
  it('is a different, well-formed code or token', () => {
    for (let i = 0; i < 50; i++) expect(wrongCode('123456')).toMatch(/^(?!123456)[0-9]{6}$/);
    // drawn again when the draw is the right code; short draws keep their leading zeros
    const draws = [123456, 123456, 42];
    expect(wrongCode('123456', () => draws.shift()!)).toBe('000042');
    const token = 'A'.repeat(43);
    expect(tamperedToken(token)).toBe(`B${'A'.repeat(42)}`);
    expect(tamperedToken(`x${token.slice(1)}`)).toBe(token);
  });

  it('is refused only by a 401 with the channel’s invalid-secret code and an open challenge', () => {
    expect(judgeWrongSecret('sms', { status: 401, error: 'invalid_otp' }, 'open')).toEqual(refused);
    expect(judgeWrongSecret('email', { status: 401, error: 'invalid_token' }, 'open')).toEqual({
      verdict: 'refused',
      answer: '401 invalid_token',
    });
    // accepted: the verify said so, or the challenge is verified after the wrong one
    expect(judgeWrongSecret('sms', { status: 200, error: 'verified' }, 'verified').verdict).toBe('accepted');
    expect(judgeWrongSecret('email', { status: 303 }, 'open').verdict).toBe('accepted');
    expect(judgeWrongSecret('sms', { status: 401, error: 'invalid_otp' }, 'verified').verdict).toBe('accepted');
    // anything else proves nothing either way
    for (const [status, error, after] of [
      [401, 'invalid_token', 'open'],
      [429, 'rate_limited', 'open'],
      [423, 'locked', 'locked'],
      [410, 'expired', 'expired'],
      [503, 'unavailable', 'open'],
    ] as const)
      expect(judgeWrongSecret('sms', { status, error }, after)).toMatchObject({ verdict: 'unexpected' });
    expect(judgeWrongSecret('sms', { status: 429, error: 'rate_limited' }, 'open').answer).toBe(
      '429 rate_limited, challenge open',
    );
  });
});

describe("the checklist's items from a canary run", () => {
  it('passes all four when the wrong code was refused, the right one verified and nothing leaked', () => {
    const v = canaryVerdicts(run());
    expect(statuses(v)).toEqual({
      generation: ['sms_otp_generation', 'passed'],
      valid: ['valid_token_validation', 'passed'],
      invalid: ['invalid_token_rejection', 'passed'],
      plaintext: ['no_plaintext_tokens', 'passed'],
    });
    expect(v.invalid.detail).toBe(
      'wrong code (canary canary-operator (canary-checklist-INC-1-sms-1): 401 invalid_otp, then the right code verified)',
    );
    expect(v.plaintext.detail).toMatch(/^the canary code not found in 3 audit rows, 2 workflow histories/);
    expect(canaryVerdicts(run({ channel: 'email' })).generation.id).toBe('magic_link_generation');
  });

  it('fails invalid_token_rejection when the wrong code was accepted', () => {
    const accepted = run({
      checks: { wrongSecret: { verdict: 'accepted', answer: '200 verified' }, plaintext: clean },
    });
    const v = canaryVerdicts(accepted);
    expect(v.invalid.status).toBe('failed');
    expect(v.invalid.detail).toMatch(/^wrong code: ACCEPTED \(200 verified, expected 401 invalid_otp\)/);
    // the sign-in itself went through: only the rejection item fails
    expect([v.generation.status, v.valid.status, v.plaintext.status]).toEqual(['passed', 'passed', 'passed']);
    const tampered = canaryVerdicts({
      ...accepted,
      channel: 'email',
      checks: { wrongSecret: { verdict: 'accepted', answer: '200 verified' }, plaintext: clean },
    });
    expect(tampered.invalid.detail).toMatch(
      /^tampered link token: ACCEPTED \(200 verified, expected 401 invalid_token\)/,
    );
  });

  it('fails invalid_token_rejection on another answer, or when the right code was refused too', () => {
    const limited = canaryVerdicts(
      run({
        checks: {
          wrongSecret: { verdict: 'unexpected', answer: '429 rate_limited, challenge open' },
          plaintext: clean,
        },
      }),
    );
    expect(limited.invalid).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('not refused as invalid'),
    });
    const allRefused = canaryVerdicts(run({ outcome: 'rejected' }));
    expect(statuses(allRefused)).toMatchObject({
      generation: ['sms_otp_generation', 'passed'],
      valid: ['valid_token_validation', 'failed'],
      invalid: ['invalid_token_rejection', 'failed'],
    });
    expect(allRefused.invalid.detail).toContain('but the right code was refused too (rejected)');
  });

  it('fails every item of a run that never came back, naming why', () => {
    const v = canaryVerdicts(
      run({
        outcome: 'timeout',
        latencyMs: undefined,
        checks: undefined,
        detail: 'no message came back within 60000 ms',
      }),
    );
    expect(Object.values(v).map((i) => i.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(v.invalid.detail).toBe(
      'wrong code: not checked, canary canary-operator (canary-checklist-INC-1-sms-1): timeout, no message came back within 60000 ms',
    );
  });

  it('fails no_plaintext_tokens on a place found, or on a source it could not read', () => {
    const found = canaryVerdicts(
      run({
        checks: {
          wrongSecret: refused,
          plaintext: { found: ['log line 12 of this process msg'], scanned: clean.scanned },
        },
      }),
    );
    expect(found.plaintext).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('in plaintext at: log line 12 of this process msg'),
    });
    const incomplete = canaryVerdicts(
      run({
        checks: { wrongSecret: refused, plaintext: { ...clean, problem: 'GET http://w2/metrics: answered 500' } },
      }),
    );
    expect(incomplete.plaintext).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('scan incomplete'),
    });
  });

  it('names one canary run per checklist run and channel, and describes its verdicts without a secret', () => {
    const input = { incidentId: 'INC-7', baseline: { takenAt: '2025-01-15T12:00:00.000Z', values: {} } };
    expect(checklistCanaryId(input, 'email')).toBe('canary-checklist-INC-7-email-1736942400000');
    expect(describeChecks('sms', { wrongSecret: refused, plaintext: clean })).toBe(
      'wrong code refused (401 invalid_otp); the code in no history, log line, audit row or metric scanned',
    );
  });
});

describe('the plaintext scan', () => {
  const code = '123456';
  const token = 'Qm9vdHN0cmFwX3Rva2VuX2Zvcl90ZXN0aW5nX29ubHkx'.slice(0, 43);

  it('finds the exact code or token in a field, and names the field, never the value', () => {
    const scan = new PlaintextScan([code, token]);
    scan.value('audit_events 7', { details: { note: `your code is ${code}.` }, user_id: 'u' });
    scan.json('log line 3 of this process', JSON.stringify({ msg: 'sent', url: `https://w/x?token=${token}&a=1` }));
    scan.metrics('metrics of this process', `# HELP a_total x\na_total{code="${code}"} 1\n`);
    scan.value('canary_runs 1', { [code]: { nested: code } });
    expect(scan.found).toEqual([
      'audit_events 7 details.note',
      'log line 3 of this process url',
      'metrics of this process line 2 (a_total)',
      'canary_runs 1: a key',
      'canary_runs 1 <a key>.nested',
    ]);
    expect(scan.found.join(' ')).not.toContain(code);
    expect(scan.found.join(' ')).not.toContain(token);
  });

  it('does not match the digits of timestamps, numbers, longer digit runs or metric values', () => {
    const scan = new PlaintextScan([code, token]);
    scan.value('Temporal history w', {
      events: [
        {
          eventId: { low: 123456, high: 0, unsigned: false },
          eventTime: { seconds: { low: 1712345678, high: 0, unsigned: false }, nanos: 123456000 },
          identity: '71234567@host',
          latencyMs: 123456,
        },
      ],
    });
    scan.value('audit_events 8', { occurred_at: '2025-01-15T12:00:00.123456+00:00', id: 123456, ip: '10.12.34.56' });
    scan.json(
      'log line 1 of this process',
      JSON.stringify({ time: '2025-01-15T12:00:00.123Z', pid: 123456, n: '9123456' }),
    );
    scan.metrics('metrics of this process', 'x_seconds 1123456.5\ny_total 123456\n');
    // a token is matched whole: a longer base64url run holding it is something else
    scan.text('free', `${token}Z`);
    expect(scan.found).toEqual([]);
  });
});

describe('development secrets', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const dataDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-secrets-'));
    dirs.push(dir);
    return dir;
  };

  it('generates the SendGrid Inbound Parse token once the canary is configured, and keeps it', () => {
    const dir = dataDir();
    const file = path.join(dir, 'secrets', 'sendgrid-inbound-token');
    expect(devSecretsEnv(dir, {}).SENDGRID_INBOUND_TOKEN_FILE).toBeUndefined();
    expect(existsSync(file)).toBe(false);

    const env = devSecretsEnv(dir, { WARDEN_CANARY_USER: 'canary-operator' });
    expect(env.SENDGRID_INBOUND_TOKEN_FILE).toBe(file);
    const token = readFileSync(file, 'utf8');
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // a second start keeps the same token (the sandbox's mailbox and the Parse URL hold it)
    devSecretsEnv(dir, { WARDEN_CANARY_USER: 'canary-operator' });
    expect(readFileSync(file, 'utf8')).toBe(token);
    // the environment's own wins
    expect(
      devSecretsEnv(dir, { WARDEN_CANARY_USER: 'c', SENDGRID_INBOUND_TOKEN: 'x'.repeat(16) })
        .SENDGRID_INBOUND_TOKEN_FILE,
    ).toBeUndefined();
  });
});
