import { describe, expect, it } from 'vitest';
import { normalizeIp } from '../../src/auth/clientIp';
import { formatIpv6, ipBucket, ipv6Site } from '../../src/auth/ipBucket';

describe('client buckets', () => {
  it('keeps an IPv4 address as its own bucket', () => {
    expect(ipBucket('203.0.113.7')).toBe('203.0.113.7');
    expect(ipBucket(' 203.0.113.7 ')).toBe('203.0.113.7');
    expect(ipv6Site('203.0.113.7')).toBeUndefined();
  });

  it('counts an IPv6 address by its /64, whatever its spelling', () => {
    const spellings = [
      '2001:db8:1:2:3:4:5:6',
      '2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF',
      '2001:0db8:0001:0002:0000:0000:0000:0001',
      '2001:db8:1:2::1',
      '2001:db8:1:2::',
      '2001:db8:1:2:0:0:198.51.100.7',
    ];
    for (const ip of spellings) expect(ipBucket(ip), ip).toBe('2001:db8:1:2::/64');
    // the longest run of zero groups is the one written as ::
    expect(ipBucket('2001:db8::1')).toBe('2001:db8::/64');
    expect(ipBucket('2001:db8:0:1::5')).toBe('2001:db8:0:1::/64');
    expect(ipBucket('2001:0:0:1:2:3:4:5')).toBe('2001:0:0:1::/64');
    expect(ipBucket('::1')).toBe('::/64');
    expect(ipBucket('fd00:a:b:c:d:e:f:1')).toBe('fd00:a:b:c::/64');
  });

  it('gives the /48 of an IPv6 address', () => {
    expect(ipv6Site('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1::/48');
    expect(ipv6Site('2001:db8:1:ffff::1')).toBe('2001:db8:1::/48');
    expect(ipv6Site('2001:db8::1')).toBe('2001:db8::/48');
    expect(ipv6Site('2001:db8:abcd:12::5')).toBe('2001:db8:abcd::/48');
    expect(ipv6Site('::1')).toBe('::/48');
  });

  it('drops a zone id', () => {
    expect(ipBucket('fe80::1%eth0')).toBe('fe80::/64');
    expect(ipBucket('fe80::a:b:c:d%25')).toBe('fe80::/64');
    expect(ipv6Site('fe80::1%eth0')).toBe('fe80::/48');
  });

  it('treats an IPv4-mapped IPv6 address as the IPv4 address, in either spelling', () => {
    expect(ipBucket('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(ipBucket('::FFFF:203.0.113.7')).toBe('203.0.113.7');
    expect(ipBucket('::ffff:cb00:7107')).toBe('203.0.113.7');
    expect(ipBucket('0:0:0:0:0:ffff:cb00:7107')).toBe('203.0.113.7');
    expect(ipv6Site('::ffff:203.0.113.7')).toBeUndefined();
    expect(ipv6Site('::ffff:cb00:7107')).toBeUndefined();
    // the blocklist and the audit mask read the normalised address too
    expect(normalizeIp('::ffff:cb00:7107')).toBe('203.0.113.7');
    expect(normalizeIp('::ffff:cb00:7107%eth0')).toBe('203.0.113.7');
    expect(normalizeIp('::cb00:7107')).toBe('::cb00:7107');
    expect(normalizeIp('64:ff9b::cb00:7107')).toBe('64:ff9b::cb00:7107');
  });

  it('answers undefined for anything that is not an address', () => {
    const bad = [
      '',
      ' ',
      'garbage',
      '1.2.3',
      '256.1.1.1',
      '2001:db8::g',
      '2001:db8:::1',
      '1:2:3:4:5:6:7:8:9',
      '[2001:db8::1]',
      '2001:db8::/64',
      '203.0.113.0/24',
      '::ffff:999.1.1.1',
      'x'.repeat(100),
    ];
    for (const ip of bad) {
      expect(ipBucket(ip), ip).toBeUndefined();
      expect(ipv6Site(ip), ip).toBeUndefined();
    }
    expect(ipBucket(undefined as unknown as string)).toBeUndefined();
    expect(ipv6Site(42 as unknown as string)).toBeUndefined();
  });

  it('writes groups in the canonical form', () => {
    expect(formatIpv6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 0])).toBe('2001:db8:0:0:1::');
    expect(formatIpv6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1])).toBe('2001:db8:0:1::1');
    expect(formatIpv6([0, 0, 0, 0, 0, 0, 0, 0])).toBe('::');
    expect(formatIpv6([1, 2, 3, 4, 5, 6, 7, 8])).toBe('1:2:3:4:5:6:7:8');
    // a single zero group is not compressed
    expect(formatIpv6([1, 0, 3, 4, 5, 6, 7, 8])).toBe('1:0:3:4:5:6:7:8');
  });
});
