/**
 * The attack suite's arithmetic and bookkeeping (bench/attack/): the success probability behind
 * the guessing row, the worst hour of a bombing, the SMS pumping prediction, the stack's
 * settings, and the generated block of SECURITY.md. The attacks themselves run in
 * test/integration/attacks.test.ts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchAddress } from '../../bench/attack/client';
import { successProbability } from '../../bench/attack/guessing';
import { STACK_SETTINGS, stackEnv } from '../../bench/attack/plan';
import { renderTable, writeSecurityMarkdown } from '../../bench/attack/report';
import { maxInWindow } from '../../bench/attack/smsBombing';
import { blockEstimate, DEFAULT_PUMPING_SETTINGS } from '../../bench/attack/smsPumping';
import { guessSuccessBound } from '../../src/auth/budgets';

describe('the attack suite', () => {
  it('puts the chance of guessing a code within a year of the budget under 1%, and of the old per-user limit at 65%', () => {
    expect(successProbability(20 * 365)).toBeCloseTo(0.00727, 5);
    // the union bound of docs/security.md is the upper bound of the exact figure
    expect(successProbability(20 * 365)).toBeLessThanOrEqual(guessSuccessBound(20, 365));
    expect(successProbability(2880 * 365)).toBeCloseTo(0.65, 2);
    expect(successProbability(0)).toBe(0);
  });

  it('finds the most messages in any window, whatever the order of the points', () => {
    const points = [
      { at: 3600, messages: 10 },
      { at: 0, messages: 10 },
      { at: 90_000, messages: 10 },
    ];
    expect(maxInWindow(points, 3600)).toBe(10);
    expect(maxInWindow(points, 86_400)).toBe(20);
    expect(maxInWindow([...points, { at: 3599, messages: 1 }], 3600)).toBe(11);
    expect(maxInWindow([], 3600)).toBe(0);
  });

  it('predicts the messages a pump at 1/s gets through before a block, at the defaults and with the run settings', () => {
    expect(blockEstimate(1, DEFAULT_PUMPING_SETTINGS)).toEqual({ least: 120, most: 180 });
    expect(blockEstimate(1, { interval: '10s', windows: '10m:20,1h:50', grace: '10s' })).toEqual({
      least: 20,
      most: 30,
    });
    // a faster pump reaches the volume sooner but still waits out the grace
    expect(blockEstimate(5, { interval: '10s', windows: '10m:20', grace: '10s' })).toEqual({ least: 100, most: 150 });
  });

  it("starts the stack with every defence at its default, whatever the throughput benchmark raises, then the run's settings", () => {
    const env = stackEnv();
    expect(env).toMatchObject({
      WARDEN_DESTINATION_MAX_PER_HOUR: '10',
      WARDEN_DESTINATION_MAX_PER_DAY: '20',
      WARDEN_GUESS_MAX_PER_DAY: '20',
      WARDEN_GUESS_FREE_FAILURES: '3',
      WARDEN_RATE_LIMIT_V6_48_FACTOR: '4',
      ...STACK_SETTINGS,
    });
    // unset: the stack derives admission control from the machine
    expect('WARDEN_ADMISSION_CONCURRENCY' in env && env.WARDEN_ADMISSION_CONCURRENCY === undefined).toBe(true);
  });

  it('hands each attack addresses of the benchmarking range only', () => {
    expect(benchAddress(0)).toBe('198.18.0.0');
    expect(benchAddress(8192 + 999)).toBe('198.18.35.231');
    expect(benchAddress(2 ** 17 - 1)).toBe('198.19.255.255');
    expect(() => benchAddress(2 ** 17)).toThrow(RangeError);
  });

  it("rewrites only SECURITY.md's generated block, creating the file with its overview when absent", () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'attack-md-')), 'SECURITY.md');
    const table = renderTable([
      { attack: 'a | b', reported: 'r', measured: 'm', target: 't', pass: true },
      { attack: 'c', reported: 'r', measured: 'failed', target: '', pass: null },
    ]);
    expect(table).toContain('| a \\| b | r | m | t | pass |');
    expect(table).toContain('| n/a |');
    writeSecurityMarkdown(file, 'first');
    const created = readFileSync(file, 'utf8');
    expect(created).toMatch(/^# Security\n/);
    expect(created).toContain('docs/security.md');
    writeFileSync(file, created.replace('# Security', '# Security\n\nAn edit of our own.'));
    writeSecurityMarkdown(file, 'second');
    const rewritten = readFileSync(file, 'utf8');
    expect(rewritten).toContain('An edit of our own.');
    expect(rewritten).toContain('\nsecond\n');
    expect(rewritten).not.toContain('first');
  });
});
