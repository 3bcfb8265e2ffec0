/**
 * Client addresses. The address is the socket's, or X-Forwarded-For's when the socket peer is
 * one of WARDEN_TRUSTED_PROXIES (Fastify's trustProxy decides; `request.ip` is the result).
 * Audit rows and logs carry only the masked form: IPv4 /24, IPv6 /64. Rate limits, the CAPTCHA
 * trigger and the abuse runbook's blocks count the address's bucket (src/auth/ipBucket.ts).
 */
import { isIP } from 'node:net';

/**
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack socket reports) becomes plain IPv4, in
 * its hexadecimal spelling (::ffff:c000:207) too: one client, one address, whatever the proxy
 * wrote, so a block or a limit of the IPv4 address cannot be sidestepped by the other form.
 */
export function normalizeIp(ip: string): string {
  let value = ip.trim().toLowerCase();
  const zone = value.indexOf('%');
  if (zone >= 0) value = value.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(value);
  if (mapped?.[1] && isIP(mapped[1]) === 4) return mapped[1];
  if (isIP(value) === 6) {
    const groups = ipv6Groups(value);
    if (groups.length === 8 && groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
      const [hi = 0, lo = 0] = groups.slice(6);
      return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
    }
  }
  return value;
}

/** The eight 16-bit groups of an IPv6 address (with or without an embedded IPv4 tail). */
export function ipv6Groups(ip: string): number[] {
  let text = ip;
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (v4?.[1]) {
    const [a, b, c, d] = v4[1].split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const fill = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...fill, ...right];
}

/** 203.0.113.7 -> 203.0.113.0/24; 2001:db8:1:2:3:4:5:6 -> 2001:db8:1:2::/64. */
export function maskIp(ip: string): string {
  const value = normalizeIp(ip);
  const version = isIP(value);
  if (version === 4) return `${value.split('.').slice(0, 3).join('.')}.0/24`;
  if (version === 6) {
    const groups = ipv6Groups(value)
      .slice(0, 4)
      .map((g) => g.toString(16));
    return `${groups.join(':')}::/64`;
  }
  return 'unknown';
}

export interface ParsedCidr {
  /** the text as Postgres accepts it: `address/prefix` */
  text: string;
  version: 4 | 6;
  prefix: number;
}

/**
 * A single address or a CIDR block as typed by a responder: `192.0.2.7`, `198.51.100.0/24`,
 * `2001:db8::/32`. Host bits are allowed (Postgres' network() clears them). Null if invalid.
 */
export function parseCidr(input: string): ParsedCidr | null {
  if (typeof input !== 'string' || input.length > 64) return null;
  const [rawAddress = '', rawPrefix, extra] = input.trim().split('/');
  if (extra !== undefined) return null;
  // a zone id (fe80::1%eth0) names an interface of this host: meaningless in a blocklist
  if (rawAddress.includes('%')) return null;
  const address = normalizeIp(rawAddress);
  const version = isIP(address);
  if (version !== 4 && version !== 6) return null;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (rawPrefix !== undefined) {
    if (!/^\d{1,3}$/.test(rawPrefix)) return null;
    prefix = Number(rawPrefix);
    if (prefix > max) return null;
  }
  return { text: `${address}/${prefix}`, version, prefix };
}
