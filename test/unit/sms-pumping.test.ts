/**
 * The SMS pumping rule as pure functions (src/delivery/smsPumping.ts): prefixes of an E.164
 * number, a prefix judged on volume and conversion per window, countries from prefixes, the
 * settings, and the incident a block opens (src/incidents/smsPumping.ts).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';
import type { PrefixBlock } from '../../src/delivery/prefixBlocks';
import {
  conversionOf,
  countryOf,
  countryTotals,
  judgePrefix,
  MAX_BLOCKS_PER_EVALUATION,
  numberPrefix,
  prefixesOf,
  prefixesToBlock,
  type PrefixCounts,
} from '../../src/delivery/smsPumping';
import { alertWorkflowId } from '../../src/incidents/alertmanager';
import { pumpingNotification } from '../../src/incidents/smsPumping';
import { operatorKeyword } from '../../src/shared/searchAttributes';

const HOUR = 3600;
const counts = (over: Partial<PrefixCounts> = {}): PrefixCounts => ({
  prefix: '447700',
  windowSeconds: HOUR,
  messages: 60,
  challenges: 50,
  settled: 50,
  verified: 2,
  ...over,
});

describe('number prefixes', () => {
  it('takes the first digits after + of an E.164 number, or all of a shorter one', () => {
    expect(numberPrefix('+447700900555', 6)).toBe('447700');
    expect(numberPrefix('+15555550100', 4)).toBe('1555');
    expect(numberPrefix('+4930', 6)).toBe('4930');
  });

  it('answers nothing for what is not an E.164 number', () => {
    for (const bad of ['447700900555', '+0447700900555', '+44 7700 900555', '', '+1234567890123456'])
      expect(numberPrefix(bad, 6), bad).toBeUndefined();
    expect(prefixesOf('07700 900555')).toEqual([]);
  });

  it('lists every prefix a block of the number could name, one digit to all', () => {
    expect(prefixesOf('+4477009')).toEqual(['4', '44', '447', '4477', '44770', '447700', '4477009']);
  });

  it('finds the country calling code of a prefix, one to three digits long', () => {
    expect(countryOf('155555')).toBe('1');
    expect(countryOf('79161')).toBe('7');
    expect(countryOf('447700')).toBe('44');
    expect(countryOf('234803')).toBe('234');
    expect(countryOf('882345')).toBe('882');
    // neither 9, 99 nor 999 is a calling code
    expect(countryOf('999123')).toBe('unknown');
  });
});

describe('judging a prefix', () => {
  const window = { seconds: HOUR, minMessages: 50 };

  it('blocks a prefix with the volume whose verified share is below the threshold', () => {
    expect(judgePrefix(counts({ verified: 4 }), window, 0.1)).toEqual({ kind: 'block', conversion: 0.08 });
  });

  it('does not block at or above the threshold', () => {
    expect(judgePrefix(counts({ verified: 5 }), window, 0.1)).toEqual({ kind: 'ok', conversion: 0.1 });
    expect(judgePrefix(counts({ verified: 40 }), window, 0.1)).toEqual({ kind: 'ok', conversion: 0.8 });
  });

  it('does not judge below the volume, however bad the conversion', () => {
    expect(judgePrefix(counts({ messages: 49, verified: 0 }), window, 0.1)).toEqual({ kind: 'too_few' });
    expect(judgePrefix(counts({ messages: 50, verified: 0 }), window, 0.1)).toEqual({ kind: 'block', conversion: 0 });
  });

  it('waits while most challenges have no outcome yet (a burst sent a moment ago)', () => {
    expect(judgePrefix(counts({ challenges: 50, settled: 24, verified: 0 }), window, 0.1)).toEqual({
      kind: 'too_few',
    });
    expect(judgePrefix(counts({ challenges: 50, settled: 25, verified: 0 }), window, 0.1).kind).toBe('block');
    expect(judgePrefix(counts({ settled: 0, verified: 0 }), window, 0.1)).toEqual({ kind: 'too_few' });
    expect(conversionOf({ settled: 0, verified: 0 })).toBeUndefined();
  });

  it('never blocks with a threshold of 0 (measure only)', () => {
    expect(judgePrefix(counts({ verified: 0 }), window, 0)).toEqual({ kind: 'ok', conversion: 0 });
  });

  it('blocks when any window trips, giving the worst window, the busiest prefixes first', () => {
    const rules = {
      windows: [
        { seconds: 600, minMessages: 20 },
        { seconds: HOUR, minMessages: 50 },
      ],
      minConversion: 0.1,
    };
    const rows = [
      // a burst: the 10-minute window trips, the hour (diluted by earlier good traffic) does not
      counts({ prefix: '447700', windowSeconds: 600, messages: 25, challenges: 25, settled: 25, verified: 1 }),
      counts({ prefix: '447700', windowSeconds: HOUR, messages: 120, challenges: 100, settled: 100, verified: 60 }),
      // both trip: the worse one is the reason
      counts({ prefix: '234803', windowSeconds: 600, messages: 30, challenges: 30, settled: 30, verified: 2 }),
      counts({ prefix: '234803', windowSeconds: HOUR, messages: 200, challenges: 150, settled: 150, verified: 0 }),
      // converts normally
      counts({ prefix: '155555', windowSeconds: HOUR, messages: 500, challenges: 450, settled: 440, verified: 400 }),
      // a window the rules do not name is ignored
      counts({ prefix: '999000', windowSeconds: 86_400, messages: 900, verified: 0 }),
    ];
    const blocked = prefixesToBlock(rows, rules);
    expect(blocked.map((b) => [b.prefix, b.windowSeconds, b.conversion])).toEqual([
      ['234803', HOUR, 0],
      ['447700', 600, 0.04],
    ]);
  });

  it('blocks at most a bounded number of prefixes per evaluation', () => {
    const rows = Array.from({ length: MAX_BLOCKS_PER_EVALUATION + 5 }, (_, i) =>
      counts({ prefix: String(100000 + i), messages: 100 + i, verified: 0 }),
    );
    const blocked = prefixesToBlock(rows, { windows: [{ seconds: HOUR, minMessages: 50 }], minConversion: 0.1 });
    expect(blocked).toHaveLength(MAX_BLOCKS_PER_EVALUATION);
    expect(blocked[0]!.prefix).toBe(String(100000 + MAX_BLOCKS_PER_EVALUATION + 4));
  });
});

describe('conversion per country', () => {
  it('sums the prefixes of one window per calling code', () => {
    const rows = [
      counts({ prefix: '447700', messages: 10, challenges: 8, settled: 8, verified: 1 }),
      counts({ prefix: '447911', messages: 5, challenges: 5, settled: 4, verified: 4 }),
      counts({ prefix: '155555', messages: 3, challenges: 3, settled: 3, verified: 3 }),
      counts({ prefix: '447700', windowSeconds: 600, messages: 99 }),
    ];
    expect(countryTotals(rows, HOUR)).toEqual([
      { country: '1', windowSeconds: HOUR, messages: 3, challenges: 3, settled: 3, verified: 3 },
      { country: '44', windowSeconds: HOUR, messages: 15, challenges: 13, settled: 12, verified: 5 },
    ]);
  });
});

describe('settings', () => {
  const base = { WARDEN_ADMIN_TOKEN: 'a-long-enough-admin-token' };

  it('defaults to a one-minute evaluation of one hour, 50 messages, 10%, six digits, blocks of 6 h', () => {
    expect(loadConfig(base).smsPumping).toEqual({
      intervalSeconds: 60,
      rules: {
        prefixDigits: 6,
        windows: [{ seconds: HOUR, minMessages: 50 }],
        minConversion: 0.1,
        graceSeconds: 60,
        blockSeconds: 6 * HOUR,
      },
    });
  });

  it('reads several windows, shortest first, and turns the evaluation off', () => {
    const config = loadConfig({
      ...base,
      WARDEN_SMS_PUMPING_WINDOWS: '1d:300, 10m:20',
      WARDEN_SMS_PUMPING_INTERVAL: 'off',
      WARDEN_SMS_PUMPING_GRACE: '0s',
      WARDEN_SMS_PUMPING_MIN_CONVERSION: '0.25',
    }).smsPumping;
    expect(config.intervalSeconds).toBeNull();
    expect(config.rules.windows).toEqual([
      { seconds: 600, minMessages: 20 },
      { seconds: 86_400, minMessages: 300 },
    ]);
    expect(config.rules.graceSeconds).toBe(0);
    expect(config.rules.minConversion).toBe(0.25);
  });

  it('refuses what it cannot use, naming the setting', () => {
    for (const [name, value] of [
      ['WARDEN_SMS_PUMPING_WINDOWS', '1h'],
      ['WARDEN_SMS_PUMPING_WINDOWS', '1h:50,1h:60'],
      ['WARDEN_SMS_PUMPING_WINDOWS', '30s:5'],
      ['WARDEN_SMS_PUMPING_WINDOWS', '8d:5'],
      ['WARDEN_SMS_PUMPING_MIN_CONVERSION', '1.5'],
      ['WARDEN_SMS_PUMPING_INTERVAL', '5s'],
      ['WARDEN_SMS_PUMPING_BLOCK', '30s'],
      ['WARDEN_SMS_PUMPING_PREFIX_DIGITS', '2'],
    ] as const) {
      const attempt = () => loadConfig({ ...base, [name]: value });
      expect(attempt, `${name}=${value}`).toThrow(ConfigError);
      expect(attempt, `${name}=${value}`).toThrow(name);
    }
  });
});

describe('the incident of a block', () => {
  const block: PrefixBlock = {
    prefix: '447700',
    generation: 2,
    reason: 'conversion 0.0%',
    created_by: 'sms-pumping',
    created_at: '2025-01-15T10:00:00.000Z',
    until: '2025-01-15T16:00:00.000Z',
    lifted_at: null,
    lifted_by: null,
    window_seconds: HOUR,
    messages: 57,
    challenges: 50,
    settled: 50,
    verified: 1,
    incident_id: null,
    incident_workflow_id: null,
    active: true,
  };

  it('is an abuse incident under a key that depends on the prefix only, one alert per block', () => {
    const n = pumpingNotification(block);
    const again = pumpingNotification({ ...block, generation: 3, messages: 80 });
    expect(n.workflowId).toBe(again.workflowId);
    expect(n.workflowId).toBe(alertWorkflowId('warden/sms-pumping/447700'));
    expect(pumpingNotification({ ...block, prefix: '447701' }).workflowId).not.toBe(n.workflowId);
    expect(n.signal).toEqual({
      status: 'firing',
      firing: ['447700/2'],
      resolved: [],
      alertnames: ['SmsPumpingPrefixBlocked'],
    });
    expect(n.input).toMatchObject({
      type: 'abuse',
      severity: 'P2',
      openedByRole: 'automation',
      detectedAt: block.created_at,
    });
    expect(n.input.title).toContain('+447700');
    // Warden opened it, not an operator: it names nobody in the Operators search attribute
    expect(operatorKeyword(n.input.openedBy)).toBeUndefined();
    expect(n.input.impact).toContain('1 of 50');
  });
});
