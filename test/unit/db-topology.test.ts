import { describe, expect, it } from 'vitest';
import { redactSql } from '../../src/db/failoverChecks';
import { chooseEndpoint, endpointId, parseEndpoints, type EndpointProbe } from '../../src/db/topology';
import { invalidControlChange } from '../../src/shared/database';

const primary = (id: string, timeline = 1): EndpointProbe => ({ id, role: 'primary', timeline });
const standby = (id: string, replayLsn = '0/1000'): EndpointProbe => ({ id, role: 'standby', replayLsn });
const down = (id: string): EndpointProbe => ({ id, role: 'unreachable', error: 'ECONNREFUSED' });

describe('database topology: which server a process uses', () => {
  it('names endpoints host:port, never with credentials, and drops duplicates', () => {
    expect(endpointId('postgres://warden:secret@db-1.internal:5433/warden')).toBe('db-1.internal:5433');
    expect(endpointId('postgres://warden:secret@db-2/warden')).toBe('db-2:5432');
    expect(
      parseEndpoints(['postgres://a:b@h1:1/x', 'postgres://c:d@h2:2/x', 'postgres://e:f@h1:1/y']).map((e) => e.id),
    ).toEqual(['h1:1', 'h2:2']);
  });

  it('prefers a writable server, the newest timeline when two claim to be primary, the current one on a tie', () => {
    expect(chooseEndpoint([primary('a'), standby('b')], { current: 'a' })).toEqual({ id: 'a', role: 'primary' });
    expect(chooseEndpoint([down('a'), primary('b', 2)], { current: 'a' })).toEqual({ id: 'b', role: 'primary' });
    // an old primary restarted after a failover (timeline 1) loses to the promoted one (2)
    expect(chooseEndpoint([primary('a', 1), primary('b', 2)], { current: 'a' })).toEqual({ id: 'b', role: 'primary' });
    expect(chooseEndpoint([primary('a', 3), primary('b', 3)], { current: 'b' })).toEqual({ id: 'b', role: 'primary' });
  });

  it('falls back to a standby for reads when nothing takes writes: the current one, else the most advanced', () => {
    expect(chooseEndpoint([down('a'), standby('b', '0/5'), standby('c', '1/0')], { current: 'a' })).toEqual({
      id: 'c',
      role: 'standby',
    });
    expect(chooseEndpoint([down('a'), standby('b', '0/5'), standby('c', '1/0')], { current: 'b' })).toEqual({
      id: 'b',
      role: 'standby',
    });
    expect(chooseEndpoint([down('a'), down('b')], { current: 'a' })).toBeNull();
  });

  it('sticks to a pinned endpoint, even when it is down and another server claims to be primary', () => {
    expect(chooseEndpoint([primary('a', 1), primary('b', 2)], { current: 'b', pinned: 'a' })).toEqual({
      id: 'a',
      role: 'primary',
    });
    expect(chooseEndpoint([primary('a', 1), down('b')], { current: 'b', pinned: 'b' })).toBeNull();
    expect(chooseEndpoint([down('a'), standby('b')], { current: 'a', pinned: 'b' })).toEqual({
      id: 'b',
      role: 'standby',
    });
  });
});

describe('database control changes and findings', () => {
  it('refuses pools out of range, endpoints that are not host:port, and empty changes', () => {
    expect(invalidControlChange({ by: 'x', pool: { max: 50, maxIdle: 10 } })).toBeUndefined();
    expect(invalidControlChange({ by: 'x', pool: { max: 0, maxIdle: 0 } })).toMatch(/pool.max/);
    expect(invalidControlChange({ by: 'x', pool: { max: 5, maxIdle: 6 } })).toMatch(/max_idle/);
    expect(invalidControlChange({ by: 'x', primary: 'postgres://u:p@h:1/db' })).toMatch(/host:port/);
    expect(invalidControlChange({ by: 'x', primary: null })).toBeUndefined();
    expect(invalidControlChange({ by: 'x' })).toBe('nothing to change');
    expect(invalidControlChange({ by: '', readOnly: true })).toBe('by is required');
  });

  it('takes literals out of SQL text before it reaches a timeline', () => {
    expect(redactSql("ALTER ROLE app PASSWORD 'hunter2'")).toBe("ALTER ROLE app PASSWORD '?'");
    expect(redactSql("SELECT 'it''s'   FROM t\n WHERE x = $1")).toBe("SELECT '?' FROM t WHERE x = $1");
    expect(redactSql('x'.repeat(500))).toHaveLength(200);
  });
});
