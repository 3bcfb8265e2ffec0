/**
 * Bench users: `bench-000001` ... with a phone and an email each, seeded straight into
 * Warden's users table. Every flow takes the next one, so no two flows in flight share a
 * user: per-user limits and "newest challenge" rules never tie them together, and each
 * message in the outbox belongs to exactly one flow.
 */
import pg from 'pg';

export interface BenchUser {
  sub: string;
  phone: string;
  email: string;
  /** the client address the user's requests come from, in 198.18.0.0/15 (RFC 2544, benchmarking) */
  ip: string;
}

export const MAX_BENCH_USERS = 999_999;

export function benchUser(n: number): BenchUser {
  if (!Number.isInteger(n) || n < 1 || n > MAX_BENCH_USERS)
    throw new RangeError(`bench user number out of range: ${n}`);
  const id = String(n).padStart(6, '0');
  // +1 555 2xx xxxx: E.164, in the fictional 555 range, never a Twilio magic test number
  // one address per user for the first 131,072 users (a run seeds 50,000), then they repeat
  const k = n % 131_072;
  const ip = `198.${18 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
  return { sub: `bench-${id}`, phone: `+15552${id}`, email: `bench-${id}@bench.example`, ip };
}

/** Hands out users round-robin; with more users than flows in flight, never one twice at once. */
export class UserPool {
  private next = 0;
  constructor(readonly size: number) {
    if (size < 1 || size > MAX_BENCH_USERS) throw new RangeError(`user pool size out of range: ${size}`);
  }

  take(): BenchUser {
    const user = benchUser((this.next % this.size) + 1);
    this.next += 1;
    return user;
  }

  /** users handed out so far */
  get taken(): number {
    return this.next;
  }
}

/** Inserts users 1..count (one statement; existing rows are kept). */
export async function seedBenchUsers(databaseUrl: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO users (sub, phone, email)
       SELECT 'bench-' || lpad(n::text, 6, '0'), '+15552' || lpad(n::text, 6, '0'), 'bench-' || lpad(n::text, 6, '0') || '@bench.example'
       FROM generate_series(1, $1::int) AS n
       ON CONFLICT (sub) DO NOTHING`,
      [count],
    );
  } finally {
    await client.end();
  }
}
