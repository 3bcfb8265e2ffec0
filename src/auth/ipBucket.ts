/**
 * Client buckets: the unit the per-IP rate limit, the CAPTCHA trigger and the abuse runbook's
 * blocks count and act on. An IPv4 address is its own bucket (/32). An IPv6 address is its /64:
 * a subscriber is given at least a /64, whose 2^64 addresses it can rotate through for free, so
 * counting full addresses would not limit anyone. Above the bucket, an IPv6 /48 (a site's usual
 * allocation) has a budget of its own, so rotating through the /64s of one /48 does not escape
 * either. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports) is the
 * IPv4 address it carries.
 *
 * Buckets are written in the canonical text form (RFC 5952: lower case, the longest run of zero
 * groups as `::`), so the same bucket always gives the same advisory-lock key, and Postgres reads
 * them as `inet` values with their prefix length (`2001:db8:1:2::/64`).
 */
import { isIP } from 'node:net';
import { ipv6Groups, normalizeIp } from './clientIp';

/** The prefix an IPv6 client is counted and blocked by. */
export const IPV6_BUCKET_PREFIX = 64;
/** The coarser IPv6 prefix with a budget of its own (WARDEN_RATE_LIMIT_V6_48_FACTOR). */
export const IPV6_SITE_PREFIX = 48;

type Address = { version: 4; text: string } | { version: 6; groups: number[] };

function parseAddress(ip: string): Address | undefined {
  if (typeof ip !== 'string' || ip.length > 64) return undefined;
  const value = normalizeIp(ip);
  const version = isIP(value);
  if (version === 4) return { version: 4, text: value };
  if (version !== 6) return undefined;
  const groups = ipv6Groups(value);
  return groups.length === 8 ? { version: 6, groups } : undefined;
}

/** The groups with every bit past `prefix` cleared. */
function network(groups: number[], prefix: number): number[] {
  return groups.map((g, i) => {
    const bits = Math.min(16, Math.max(0, prefix - 16 * i));
    return bits === 0 ? 0 : g & ((0xffff << (16 - bits)) & 0xffff);
  });
}

/** RFC 5952 text of eight groups: lower-case hex, the first longest run of two or more zero groups as `::`. */
export function formatIpv6(groups: number[]): string {
  let start = -1;
  let length = 1;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let end = i;
    while (end < groups.length && groups[end] === 0) end += 1;
    if (end - i > length) [start, length] = [i, end - i];
    i = end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (start < 0) return hex.join(':');
  return `${hex.slice(0, start).join(':')}::${hex.slice(start + length).join(':')}`;
}

/**
 * The bucket of a client address: IPv4 as is (`203.0.113.7`), IPv6 as its /64
 * (`2001:db8:1:2::/64`). A zone id is dropped; undefined for anything that is not an address.
 */
export function ipBucket(ip: string): string | undefined {
  const address = parseAddress(ip);
  if (!address) return undefined;
  if (address.version === 4) return address.text;
  return `${formatIpv6(network(address.groups, IPV6_BUCKET_PREFIX))}/${IPV6_BUCKET_PREFIX}`;
}

/** The /48 of an IPv6 client address (`2001:db8:1::/48`); undefined for IPv4 (mapped or not) and non-addresses. */
export function ipv6Site(ip: string): string | undefined {
  const address = parseAddress(ip);
  if (address?.version !== 6) return undefined;
  return `${formatIpv6(network(address.groups, IPV6_SITE_PREFIX))}/${IPV6_SITE_PREFIX}`;
}
