/**
 * The functional items of the checklist, checked end to end the way a user meets Warden: the
 * public API at WARDEN_PUBLIC_BASE_URL, codes and links read from the provider sandbox's
 * outbox. The checklist asks for 3+ users; test-user, test-user-2 and test-user-3 are seeded for it.
 * With live providers there is no outbox: on each live channel the items that need a code or a
 * link (generation, valid tokens, the wrong code or link refused, no plaintext anywhere) run
 * through one delivery canary run instead (WARDEN_CANARY_USER, docs/canary.md,
 * checklistCanary.ts), a real message to the operator's phone or mailbox and back.
 * A full run spends 3-4 initiations of each test user's 10 / 5 min budget (with live providers,
 * one of the canary user's per live channel); a resolution re-runs only the checks that are not
 * freshly passed.
 */
import { randomUUID } from 'node:crypto';
import type { CheckOutcome } from '../shared/checklist';
import { scanForPlaintext } from '../incidents/plaintextScan';
import type { Runtime } from '../runtime';
import { challengeWorkflowId } from '../shared/auth';
import type { CanaryChannel } from '../shared/canary';
import { tamperedToken, wrongCode } from '../canary/verdict';
import { canaryVerdicts, createCanaryChecklist } from './checklistCanary';
import type { CheckInput } from './checklistTypes';
import { awaitOutboxMessage, linkFrom, otpFrom, SyntheticClient } from './checklistHttp';

const OTP = '/browser/api/v1/identity/auth/otp';
const LINK = '/browser/api/v1/identity/auth/magic-link';
export const SYNTHETIC_USERS = ['test-user', 'test-user-2', 'test-user-3'] as const;
const PROBE_CAP = 200;

type Item = CheckOutcome['items'][number];
const item = (id: string, ok: boolean, detail: string): Item => ({ id, status: ok ? 'passed' : 'failed', detail });

interface Round {
  user: string;
  challengeId?: string;
  secret?: string;
  generated: boolean;
  verified: boolean;
  problem?: string;
}

export function createAuthChecklistActivities(runtime: Pick<Runtime, 'db' | 'config' | 'temporal' | 'registry'>) {
  const { db, config } = runtime;
  const p = config.providers;
  const client = (input: CheckInput, salt = '') =>
    new SyntheticClient(config.publicBaseUrl, `${input.incidentId}/${input.baseline.takenAt}${salt}`, p.timeoutMs);
  const smsSandbox = p.twilio.sandbox && p.plivo.sandbox;
  const emailSandbox = p.sendgrid.sandbox && p.ses.sandbox;

  async function contact(user: string, field: 'phone' | 'email'): Promise<string | undefined> {
    const { rows } = await db.query<{ phone: string | null; email: string | null }>(
      'SELECT phone, email FROM users WHERE sub = $1',
      [user],
    );
    return rows[0]?.[field] ?? undefined;
  }

  /** initiate -> message in the outbox -> verify, for one user and method. */
  async function round(
    c: SyntheticClient,
    user: string,
    method: 'sms_otp' | 'magic_link',
    verify = true,
  ): Promise<Round> {
    const to = await contact(user, method === 'sms_otp' ? 'phone' : 'email');
    if (!to)
      return {
        user,
        generated: false,
        verified: false,
        problem: `${user} has no ${method === 'sms_otp' ? 'phone' : 'email'}`,
      };
    const started = await c.post(`${method === 'sms_otp' ? OTP : LINK}/initiate`, { user_id: user });
    const challengeId = typeof started.body.challenge_id === 'string' ? started.body.challenge_id : undefined;
    if (started.status !== 202 || !challengeId)
      return {
        user,
        generated: false,
        verified: false,
        problem: `${user}: initiate answered ${started.status} ${String(started.body.error ?? '')}`,
      };
    const message = await awaitOutboxMessage(p.sandboxUrl, to, challengeId);
    const secret = message ? (method === 'sms_otp' ? otpFrom(message.body) : linkFrom(message.body)?.token) : undefined;
    if (!secret)
      return {
        user,
        challengeId,
        generated: false,
        verified: false,
        problem: `${user}: no ${method === 'sms_otp' ? 'code' : 'link'} delivered within 15 s`,
      };
    if (!verify) return { user, challengeId, secret, generated: true, verified: false };
    const answer =
      method === 'sms_otp'
        ? await c.post(`${OTP}/verify`, { challenge_id: challengeId, otp: secret })
        : await c.post(`${LINK}/verify`, { challenge: challengeId, token: secret });
    const verified = answer.status === 200 && answer.body.status === 'verified';
    return {
      user,
      challengeId,
      secret,
      generated: true,
      verified,
      problem: verified ? undefined : `${user}: verify answered ${answer.status} ${String(answer.body.error ?? '')}`,
    };
  }

  function flowItems(rounds: Round[], generationId: string, what: string): Item[] {
    const generated = rounds.filter((r) => r.generated).length;
    const verified = rounds.filter((r) => r.verified).length;
    const problems = rounds
      .map((r) => r.problem)
      .filter(Boolean)
      .join('; ');
    return [
      item(
        generationId,
        generated === rounds.length,
        `${generated}/${rounds.length} users received a ${what}${problems ? `; ${problems}` : ''}`,
      ),
      item('valid_token_validation', verified === rounds.length, `${what}: ${verified}/${rounds.length} verified`),
    ];
  }

  async function rateLimits(): Promise<{ per_user: { max_attempts: number }; per_ip: { max_attempts: number } }> {
    const { rows } = await db.query<{
      value: { per_user: { max_attempts: number }; per_ip: { max_attempts: number } };
    }>("SELECT value FROM runtime_settings WHERE key = 'rate_limiting'");
    return rows[0]?.value ?? { per_user: { max_attempts: 10 }, per_ip: { max_attempts: 50 } };
  }

  const canary = createCanaryChecklist(runtime);
  const noCanary = (channel: CanaryChannel) =>
    `live ${channel === 'sms' ? 'SMS' : 'email'} providers and no WARDEN_CANARY_USER: the synthetic check reads ${channel === 'sms' ? 'codes' : 'links'} from the sandbox outbox only`;
  /** How a channel's code-or-link items are checked: the sandbox outbox, the canary, or not at all. */
  const mode = (channel: CanaryChannel): 'sandbox' | 'canary' | 'none' =>
    (channel === 'sms' ? smsSandbox : emailSandbox) ? 'sandbox' : config.canary ? 'canary' : 'none';

  return {
    async checkSmsOtpFlow(input: CheckInput): Promise<CheckOutcome> {
      if (mode('sms') === 'canary') {
        const v = canaryVerdicts(await canary.run(input, 'sms'));
        return { items: [v.generation, v.valid] };
      }
      if (mode('sms') === 'none')
        return {
          items: ['sms_otp_generation', 'valid_token_validation'].map((id) => item(id, false, noCanary('sms'))),
        };
      const c = client(input);
      return {
        items: flowItems(
          await Promise.all(SYNTHETIC_USERS.map((u) => round(c, u, 'sms_otp'))),
          'sms_otp_generation',
          'SMS code',
        ),
      };
    },

    async checkMagicLinkFlow(input: CheckInput): Promise<CheckOutcome> {
      if (mode('email') === 'canary') {
        const v = canaryVerdicts(await canary.run(input, 'email'));
        return { items: [v.generation, v.valid] };
      }
      if (mode('email') === 'none')
        return {
          items: ['magic_link_generation', 'valid_token_validation'].map((id) => item(id, false, noCanary('email'))),
        };
      const c = client(input);
      return {
        items: flowItems(
          await Promise.all(SYNTHETIC_USERS.map((u) => round(c, u, 'magic_link'))),
          'magic_link_generation',
          'magic link',
        ),
      };
    },

    /**
     * The provider-outage runbook's "Validate Service Recovery": one OTP and one magic-link flow
     * for one user, end to end. The result carries ids and verdicts, never the code or link.
     */
    async syntheticAuthFlows(input: { seed: string; user: string }) {
      if (!smsSandbox || !emailSandbox) return { sandbox: false as const, rounds: [] };
      const c = new SyntheticClient(config.publicBaseUrl, input.seed, p.timeoutMs);
      const rounds = [await round(c, input.user, 'sms_otp'), await round(c, input.user, 'magic_link')];
      return {
        sandbox: true as const,
        rounds: rounds.map(({ secret: _secret, ...r }, i) => ({ method: i === 0 ? 'sms_otp' : 'magic_link', ...r })),
      };
    },

    /**
     * A wrong code, a wrong link token, an unknown challenge and an expired challenge are refused.
     * On a live channel the wrong code (link token) is the canary run's, submitted by its inbound
     * webhook before the right one.
     */
    async checkInvalidTokens(input: CheckInput): Promise<CheckOutcome> {
      const c = client(input);
      const problems: string[] = [];
      const passed: string[] = [];
      const expect = (
        what: string,
        answer: { status: number; body: Record<string, unknown> },
        status: number,
        code: string,
      ) =>
        answer.status === status && answer.body.error === code
          ? passed.push(what)
          : problems.push(`${what}: ${answer.status} ${String(answer.body.error ?? '')} (expected ${status} ${code})`);

      const fromCanary = async (channel: CanaryChannel) => {
        if (mode(channel) === 'none') return problems.push(noCanary(channel));
        const verdict = canaryVerdicts(await canary.run(input, channel)).invalid;
        (verdict.status === 'passed' ? passed : problems).push(verdict.detail);
      };

      if (mode('sms') === 'sandbox') {
        const otp = await round(c, SYNTHETIC_USERS[0], 'sms_otp', false);
        if (otp.secret && otp.challengeId) {
          expect(
            'wrong code',
            await c.post(`${OTP}/verify`, { challenge_id: otp.challengeId, otp: wrongCode(otp.secret) }),
            401,
            'invalid_otp',
          );
        } else problems.push(otp.problem ?? 'no OTP challenge');
      } else await fromCanary('sms');
      if (mode('email') === 'sandbox') {
        const link = await round(c, SYNTHETIC_USERS[1], 'magic_link', false);
        if (link.secret && link.challengeId) {
          expect(
            'wrong link token',
            await c.post(`${LINK}/verify`, { challenge: link.challengeId, token: tamperedToken(link.secret) }),
            401,
            'invalid_token',
          );
        } else problems.push(link.problem ?? 'no magic-link challenge');
      } else await fromCanary('email');
      expect(
        'unknown challenge',
        await c.post(`${OTP}/verify`, { challenge_id: randomUUID(), otp: '000000' }),
        404,
        'not_found',
      );

      const expired = await db.query<{ id: string; method: string }>(
        "SELECT id, method FROM auth_challenges WHERE status = 'expired' AND created_at > now() - interval '7 days' ORDER BY ended_at DESC NULLS LAST LIMIT 1",
      );
      const e = expired.rows[0];
      if (!e)
        problems.push('no expired challenge in the last 7 days to test expiry against (rerun after an OTP lifetime)');
      else if (e.method === 'sms_otp')
        expect(
          'expired challenge',
          await c.post(`${OTP}/verify`, { challenge_id: e.id, otp: '000000' }),
          410,
          'expired',
        );
      else
        expect(
          'expired challenge',
          await c.post(`${LINK}/verify`, { challenge: e.id, token: 'A'.repeat(43) }),
          410,
          'expired',
        );

      return {
        items: [
          item(
            'invalid_token_rejection',
            problems.length === 0,
            [...problems, ...(passed.length ? [`refused: ${passed.join(', ')}`] : [])].join('; '),
          ),
        ],
      };
    },

    /**
     * Per-user: a synthetic unknown user initiates until refused (429 at limit + 1, audited as
     * scope `user`). Per-IP: verifies of unknown challenges from a second synthetic address
     * until refused (audited as scope `ip`). Neither touches a real user's or the worker's budget.
     */
    async checkRateLimits(input: CheckInput): Promise<CheckOutcome> {
      const limits = await rateLimits();
      const problems: string[] = [];
      const notes: string[] = [];
      if (limits.per_user.max_attempts > PROBE_CAP || limits.per_ip.max_attempts > PROBE_CAP) {
        return {
          items: [
            item(
              'rate_limiting',
              false,
              `limits ${limits.per_user.max_attempts}/${limits.per_ip.max_attempts} are above the probe cap of ${PROBE_CAP}`,
            ),
          ],
        };
      }
      const userClient = client(input, '/user');
      const probeUser = `checklist-probe-${userClient.address.replace(/\./g, '-')}-${Date.now().toString(36)}`;
      let refusedAt: number | undefined;
      for (let i = 1; i <= limits.per_user.max_attempts + 1 && refusedAt === undefined; i++) {
        const answer = await userClient.post(`${OTP}/initiate`, { user_id: probeUser });
        if (answer.status === 429) refusedAt = i;
        else if (answer.status !== 202) problems.push(`per-user probe: initiate ${i} answered ${answer.status}`);
      }
      const userAudit = await db.query<{ outcome: string }>(
        "SELECT outcome FROM audit_events WHERE event_type = 'identity.ratelimit.exceeded' AND user_id = $1 ORDER BY id DESC LIMIT 1",
        [probeUser],
      );
      if (refusedAt !== limits.per_user.max_attempts + 1 || userAudit.rows[0]?.outcome !== 'user') {
        problems.push(
          `per-user limit ${limits.per_user.max_attempts}: refused at attempt ${refusedAt ?? 'never'} (scope ${userAudit.rows[0]?.outcome ?? 'none'})`,
        );
      } else notes.push(`per-user refused at ${refusedAt}`);

      const ipClient = client(input, '/ip');
      const first = randomUUID();
      await ipClient.post(`${OTP}/verify`, { challenge_id: first, otp: '000000' });
      const seen = await db.query<{ ip_masked: string | null }>(
        'SELECT ip_masked FROM audit_events WHERE challenge_id = $1 ORDER BY id DESC LIMIT 1',
        [first],
      );
      const expectedMask = `${ipClient.address.split('.').slice(0, 3).join('.')}.0/24`;
      if (seen.rows[0]?.ip_masked !== expectedMask) {
        problems.push(
          `per-IP probe not isolated: the API saw ${seen.rows[0]?.ip_masked ?? 'nothing'} instead of ${expectedMask}; list the worker in WARDEN_TRUSTED_PROXIES or use a loopback WARDEN_PUBLIC_BASE_URL`,
        );
      } else {
        let ipRefusedAt: number | undefined;
        for (let i = 2; i <= limits.per_ip.max_attempts + 1 && ipRefusedAt === undefined; i++) {
          const answer = await ipClient.post(`${OTP}/verify`, { challenge_id: randomUUID(), otp: '000000' });
          if (answer.status === 429) ipRefusedAt = i;
        }
        if (ipRefusedAt !== limits.per_ip.max_attempts + 1)
          problems.push(`per-IP limit ${limits.per_ip.max_attempts}: refused at attempt ${ipRefusedAt ?? 'never'}`);
        else notes.push(`per-IP refused at ${ipRefusedAt}`);
      }
      return {
        items: [item('rate_limiting', problems.length === 0, problems.length ? problems.join('; ') : notes.join(', '))],
      };
    },

    /**
     * No plaintext code or link token anywhere it must not be (incidents/plaintextScan.ts). On a
     * sandbox channel: a fresh flow whose secret this check reads from the outbox, then the scan
     * with it. On a live channel: the canary run's scan, made by its inbound webhook with the
     * secret it received, while it held it.
     */
    async checkTokenLeaks(input: CheckInput): Promise<CheckOutcome> {
      const parts: Array<{ ok: boolean; detail: string }> = [];
      const sandboxMethods = [
        ...(mode('sms') === 'sandbox' ? (['sms_otp'] as const) : []),
        ...(mode('email') === 'sandbox' ? (['magic_link'] as const) : []),
      ];
      if (sandboxMethods.length) {
        const c = client(input, '/leaks');
        const rounds: Round[] = [];
        for (const method of sandboxMethods) rounds.push(await round(c, SYNTHETIC_USERS[2], method));
        const broken = rounds.filter((r) => !r.verified || !r.secret || !r.challengeId);
        if (broken.length)
          parts.push({ ok: false, detail: `synthetic flows failed: ${broken.map((r) => r.problem).join('; ')}` });
        else {
          const scan = await scanForPlaintext(runtime, {
            challengeIds: rounds.map((r) => r.challengeId!),
            workflowIds: rounds.map((r) => challengeWorkflowId(r.challengeId!)),
            secrets: rounds.map((r) => r.secret!),
            since: input.baseline.takenAt,
          });
          parts.push(
            scan.found.length
              ? { ok: false, detail: `plaintext found at: ${scan.found.join(', ')}` }
              : scan.problems.length
                ? { ok: false, detail: `scan incomplete: ${scan.problems.join('; ')}` }
                : { ok: true, detail: `not found in ${scan.scanned.join(', ')}` },
          );
        }
      }
      for (const channel of ['sms', 'email'] as const) {
        if (mode(channel) === 'sandbox') continue;
        if (mode(channel) === 'none') {
          parts.push({ ok: false, detail: noCanary(channel) });
          continue;
        }
        const verdict = canaryVerdicts(await canary.run(input, channel)).plaintext;
        parts.push({ ok: verdict.status === 'passed', detail: verdict.detail });
      }
      return {
        items: [
          item(
            'no_plaintext_tokens',
            parts.every((p) => p.ok),
            parts.map((p) => p.detail).join('; '),
          ),
        ],
      };
    },
  };
}
