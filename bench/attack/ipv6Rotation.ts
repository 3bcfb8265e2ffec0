/**
 * Rotating addresses inside IPv6 prefixes (src/auth/ipBucket.ts): a subscriber holds a /64 and
 * rotates through its 2^64 addresses for free, a site holds a /48 of 65,536 /64s. Two parts:
 *
 * - one /64: every request from a fresh random address of the same /64;
 * - one /48: every request from a fresh /64 of the same /48, one address each.
 *
 * Each request is a verify of a made-up challenge: cheap, counted against the client, answered
 * 404 when the limiter let it through and 429 when it did not. Admitted beyond the limit is what
 * the limiter let through past the per-IP limit (the /64) or the /48's budget (the factor times
 * the per-IP limit), in the limits' window; 0 is the target.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { IPV6_BUCKET_PREFIX, IPV6_SITE_PREFIX } from '../../src/auth/ipBucket';
import { mapLimited } from '../lib/flows';
import { countAnswer, publicPost, rateLimits, type ShedCount } from './client';
import type { Answers, Attack, AttackTarget } from './types';

export interface Ipv6Options {
  /** requests of the first part, each from another address of one /64 */
  addressesIn64: number;
  /** requests of the second part, each from another /64 of one /48 */
  prefixesIn48: number;
  /** WARDEN_RATE_LIMIT_V6_48_FACTOR of the target */
  v48Factor: number;
  /** requests in flight */
  concurrency: number;
  /** the 16 bits after 2001:db8: of the /48s used (this one and the next) */
  site: number;
}

export interface RotationPart {
  prefix: string;
  sent: number;
  admitted: number;
  refused: number;
  /** the limit that applies to the whole prefix in one window */
  limit: number;
  /** windows the part spanned (normally 1: all of it within one window) */
  windows: number;
  beyond: number;
  seconds: number;
}

export interface Ipv6Result {
  perIpLimit: number;
  windowSeconds: number;
  in64: RotationPart;
  in48: RotationPart;
  shed: number;
  answers: Answers;
}

const group = () => randomInt(0x10000).toString(16);
const hex = (n: number) => n.toString(16);

async function rotate(
  target: AttackTarget,
  prefix: string,
  addresses: string[],
  limit: number,
  windowSeconds: number,
  concurrency: number,
  answers: Answers,
  shed: ShedCount,
): Promise<RotationPart> {
  const began = performance.now();
  let admitted = 0;
  let refused = 0;
  const done = await mapLimited(addresses, concurrency, async (ip) => {
    const res = await publicPost(target, '/otp/verify', { challenge_id: randomUUID(), otp: '123456' }, { ip }, shed);
    countAnswer(answers, res);
    if (res.status === 429) refused += 1;
    else if (res.status < 500) admitted += 1;
    else throw new Error(`answered ${res.status}`);
  });
  if (done.failed > 0) throw new Error(`${done.failed} requests from ${prefix} failed: ${done.firstError}`);
  const seconds = Math.round(performance.now() - began) / 1000;
  const windows = Math.max(1, Math.ceil(seconds / windowSeconds));
  return {
    prefix,
    sent: addresses.length,
    admitted,
    refused,
    limit,
    windows,
    beyond: Math.max(0, admitted - limit * windows),
    seconds,
  };
}

export const ipv6RotationAttack: Attack<Ipv6Options, Ipv6Result> = {
  name: 'ipv6Rotation',
  title: 'rotate addresses inside one IPv6 /64',

  async run(target, options) {
    const limits = await rateLimits(target);
    const { max_attempts: perIp, window_seconds: windowSeconds } = limits.per_ip;
    const answers: Answers = {};
    const shed: ShedCount = { shed: 0 };
    const a = hex(options.site);
    const b = hex(options.site + 1);
    // one /64 of the first /48: random interface ids
    const in64 = Array.from(
      { length: options.addressesIn64 },
      () => `2001:db8:${a}:1:${group()}:${group()}:${group()}:${group()}`,
    );
    // one address in each of many /64s of the second /48
    const in48 = Array.from(
      { length: options.prefixesIn48 },
      (_, i) => `2001:db8:${b}:${hex(i + 1)}:${group()}:${group()}:${group()}:${group()}`,
    );
    return {
      perIpLimit: perIp,
      windowSeconds,
      in64: await rotate(
        target,
        `2001:db8:${a}:1::/${IPV6_BUCKET_PREFIX}`,
        in64,
        perIp,
        windowSeconds,
        options.concurrency,
        answers,
        shed,
      ),
      in48: await rotate(
        target,
        `2001:db8:${b}::/${IPV6_SITE_PREFIX}`,
        in48,
        perIp * options.v48Factor,
        windowSeconds,
        options.concurrency,
        answers,
        shed,
      ),
      shed: shed.shed,
      answers,
    };
  },

  row(r) {
    return {
      attack: `rotate addresses inside one IPv6 /64 (and /64s inside one /48)`,
      reported: 'requests admitted beyond the per-IP limit',
      measured: `${r.in64.beyond} beyond (${r.in64.admitted} of ${r.in64.sent} admitted, limit ${r.in64.limit}); /48: ${r.in48.beyond} beyond (${r.in48.admitted} of ${r.in48.sent} from as many /64s, budget ${r.in48.limit})`,
      target: '0',
      pass: r.in64.beyond === 0 && r.in48.beyond === 0,
    };
  },

  line(r) {
    const part = (p: RotationPart) =>
      `${p.prefix}: ${p.sent} sent, ${p.admitted} admitted, ${p.refused} refused, limit ${p.limit}, ${p.beyond} beyond (${p.seconds} s)`;
    return `ipv6Rotation: per-IP limit ${r.perIpLimit} per ${r.windowSeconds} s; ${part(r.in64)}; ${part(r.in48)}`;
  },
};
