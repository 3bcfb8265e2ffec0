/**
 * Conversion per number prefix, counted in SQL over the delivery ledger: messages a provider took
 * (`delivery_attempts`, status `sent`), the challenges they belonged to (`auth_challenges`) and the
 * number they went to (the user's phone). Read by the SMS pumping evaluation on the ops task queue
 * (src/workflows/ops/smsPumping.ts), never on a sign-in's path.
 *
 * Cost: one range scan of delivery_attempts_time_idx over the longest window, one lookup per
 * challenge in it and one per user, grouped by prefix: it grows with the SMS sent in the longest
 * window, not with the tables (while auth_challenges is small the planner may scan it instead,
 * which is cheaper then). docs/delivery.md#sms-pumping has the measurements.
 */
import type { Database, Queryable } from '../db/database';
import { countryTotals, type CountryCounts, type PrefixCounts, type PumpingRules } from './smsPumping';

/**
 * One row per prefix, window and `counted`: whether the messages were sent after the prefix's
 * last block ended (only those are judged; the country totals take both). A challenge's messages
 * count at its first send in the window. $1 prefix digits, $2 the longest window (s), $3 the
 * grace (s), $4 every window (s).
 */
const PREFIX_COUNTS = `
  WITH sent AS (
    SELECT a.challenge_id, count(*)::int AS messages, min(a.last_attempt_at) AS first_sent
      FROM delivery_attempts a
     WHERE a.last_attempt_at > now() - make_interval(secs => $2)
       AND a.channel = 'sms' AND a.status = 'sent'
     GROUP BY a.challenge_id
  ), numbered AS (
    SELECT substr(u.phone, 2, $1) AS prefix, s.messages, s.first_sent,
           c.status = 'verified' AS verified,
           (c.status <> 'open' OR c.created_at <= now() - make_interval(secs => $3)) AS settled
      FROM sent s
      JOIN auth_challenges c ON c.id = s.challenge_id
      JOIN users u ON u.sub = c.user_id
     WHERE u.phone LIKE '+%'
  )
  SELECT n.prefix, w.seconds AS window_seconds,
         n.first_sent > coalesce(b.until, '-infinity') AS counted,
         sum(n.messages)::int AS messages, count(*)::int AS challenges,
         count(*) FILTER (WHERE n.settled)::int AS settled,
         count(*) FILTER (WHERE n.verified)::int AS verified
    FROM numbered n
    CROSS JOIN unnest($4::int[]) AS w(seconds)
    LEFT JOIN sms_prefix_blocks b ON b.prefix = n.prefix
   WHERE n.first_sent > now() - make_interval(secs => w.seconds)
   GROUP BY 1, 2, 3`;

interface Row {
  prefix: string;
  window_seconds: number;
  counted: boolean;
  messages: number;
  challenges: number;
  settled: number;
  verified: number;
}

export interface ConversionCounts {
  /** per prefix and window, since the prefix's last block ended: what the rules judge */
  judged: PrefixCounts[];
  /** per country over the longest window, every message (blocked prefixes' too) */
  countries: CountryCounts[];
}

const counts = (r: Row): PrefixCounts => ({
  prefix: r.prefix,
  windowSeconds: r.window_seconds,
  messages: r.messages,
  challenges: r.challenges,
  settled: r.settled,
  verified: r.verified,
});

export async function countConversion(
  db: Queryable,
  rules: Pick<PumpingRules, 'prefixDigits' | 'windows' | 'graceSeconds'>,
): Promise<ConversionCounts> {
  const windows = rules.windows.map((w) => w.seconds);
  const longest = Math.max(...windows);
  const { rows } = await db.query<Row>(PREFIX_COUNTS, [rules.prefixDigits, longest, rules.graceSeconds, windows]);
  return {
    judged: rows.filter((r) => r.counted).map(counts),
    countries: countryTotals(rows.map(counts), longest),
  };
}

/** Replaces the per-country rows the metrics read, and notes the run, in one transaction. */
export async function recordEvaluation(
  db: Pick<Database, 'transaction'>,
  input: { countries: CountryCounts[]; prefixes: number; candidates: number },
): Promise<void> {
  const { countries } = input;
  await db.transaction(async (tx) => {
    await tx.query('DELETE FROM sms_country_conversion');
    if (countries.length > 0)
      await tx.query(
        `INSERT INTO sms_country_conversion (country, window_seconds, messages, challenges, settled, verified, evaluated_at)
         SELECT * , now() FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[])`,
        [
          countries.map((c) => c.country),
          countries.map((c) => c.windowSeconds),
          countries.map((c) => c.messages),
          countries.map((c) => c.challenges),
          countries.map((c) => c.settled),
          countries.map((c) => c.verified),
        ],
      );
    await tx.query(
      `INSERT INTO sms_pumping_evaluations (singleton, evaluated_at, prefixes, candidates) VALUES (true, now(), $1, $2)
       ON CONFLICT (singleton) DO UPDATE SET evaluated_at = EXCLUDED.evaluated_at, prefixes = EXCLUDED.prefixes,
         candidates = EXCLUDED.candidates`,
      [input.prefixes, input.candidates],
    );
  });
}
