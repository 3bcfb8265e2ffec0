import { describe, expect, it } from 'vitest';
import { deliveryStages, initiateStages, normalize, verifyStages, type RawEvent } from '../../bench/lib/history';
import { extractMagicLink, extractOtp } from '../../bench/lib/outbox';
import { histogramDeltas, parsePrometheus } from '../../bench/lib/prometheus';
import { benchUser, UserPool } from '../../bench/lib/users';
import { credentialFrom, firstSendKey } from '../../bench/lib/wardenApi';
import { mergeReports } from '../../bench/report';
import type { BenchReport } from '../../bench/scenarios/types';
import { renderMagicLinkEmail, renderOtpSms, magicLinkUrl } from '../../src/auth/messages';
import { sendIdempotencyKey } from '../../src/shared/auth';

const T0 = 1_700_000_000_000;
const at = (ms: number) => ({ seconds: String(Math.floor((T0 + ms) / 1000)), nanos: ((T0 + ms) % 1000) * 1e6 });

describe('bench: reading codes and links out of the outbox', () => {
  it('finds the OTP in the SMS Warden sends, and nothing in a text without one', () => {
    const body = renderOtpSms('042917', new Date(Date.now() + 300_000));
    expect(extractOtp(body)).toBe('042917');
    expect(extractOtp('call +15552000001 now')).toBeUndefined();
  });

  it('finds the challenge and token of the link in the email Warden sends', () => {
    const id = '3f1c2a4e-8b7d-4c1e-9f00-1234567890ab';
    const link = magicLinkUrl('http://127.0.0.1:8080', id, 'tok_abc-DEF_123');
    // the sandbox keeps the text/plain part of an email
    const { text } = renderMagicLinkEmail(link, new Date(Date.now() + 900_000));
    expect(extractMagicLink(text)).toEqual({ challenge: id, token: 'tok_abc-DEF_123' });
    const message = {
      id: 'm',
      provider: 'sendgrid',
      channel: 'email' as const,
      to: 'x@y',
      subject: 's',
      body: text,
      idempotency_key: null,
      created_at: '',
    };
    expect(credentialFrom('magic_link', id, message)).toEqual({ challengeId: id, secret: 'tok_abc-DEF_123' });
    // a link of another challenge is not this challenge's credential
    expect(credentialFrom('magic_link', '00000000-0000-4000-8000-000000000000', message)).toBeUndefined();
  });

  it('matches messages by the same idempotency key the challenge workflow uses', () => {
    expect(firstSendKey('abc')).toBe(sendIdempotencyKey('abc', 1));
  });
});

describe('bench users', () => {
  it('are distinct, E.164 and stable by number', () => {
    expect(benchUser(1)).toEqual({
      sub: 'bench-000001',
      phone: '+15552000001',
      email: 'bench-000001@bench.example',
      ip: '198.18.0.1',
    });
    // every user of a run has its own address in the benchmarking range 198.18.0.0/15
    expect(benchUser(65_536).ip).toBe('198.19.0.0');
    expect(new Set(Array.from({ length: 50_000 }, (_, i) => benchUser(i + 1).ip)).size).toBe(50_000);
    expect(benchUser(999_999).phone).toMatch(/^\+[1-9]\d{6,14}$/);
    expect(() => benchUser(0)).toThrow(RangeError);
  });

  it('a pool hands them out round robin, never the same one twice before it wraps', () => {
    const pool = new UserPool(3);
    expect([pool.take(), pool.take(), pool.take(), pool.take()].map((u) => u.sub)).toEqual([
      'bench-000001',
      'bench-000002',
      'bench-000003',
      'bench-000001',
    ]);
    expect(pool.taken).toBe(4);
  });
});

describe('bench: stages from a challenge history', () => {
  // an initiate (update-with-start), its delivery, then a verify update with local activities
  const events: RawEvent[] = [
    { eventId: 1, eventType: 1, eventTime: at(10) },
    { eventId: 2, eventType: 5, eventTime: at(10) },
    { eventId: 3, eventType: 6, eventTime: at(15) },
    { eventId: 4, eventType: 7, eventTime: at(20) },
    {
      eventId: 5,
      eventType: 41,
      eventTime: at(20),
      workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { input: { name: 'awaitIssue' } } },
    },
    {
      eventId: 6,
      eventType: 10,
      eventTime: at(20),
      activityTaskScheduledEventAttributes: { activityType: { name: 'issueChallenge' } },
    },
    { eventId: 7, eventType: 11, eventTime: at(22), activityTaskStartedEventAttributes: { scheduledEventId: 6 } },
    { eventId: 8, eventType: 12, eventTime: at(102), activityTaskCompletedEventAttributes: { scheduledEventId: 6 } },
    { eventId: 9, eventType: 5, eventTime: at(102) },
    { eventId: 10, eventType: 6, eventTime: at(104) },
    { eventId: 11, eventType: 7, eventTime: at(108) },
    {
      eventId: 12,
      eventType: 43,
      eventTime: at(108),
      workflowExecutionUpdateCompletedEventAttributes: { acceptedEventId: 5 },
    },
    {
      eventId: 13,
      eventType: 10,
      eventTime: at(108),
      activityTaskScheduledEventAttributes: { activityType: { name: 'sendDelivery' } },
    },
    { eventId: 14, eventType: 11, eventTime: at(109), activityTaskStartedEventAttributes: { scheduledEventId: 13 } },
    { eventId: 15, eventType: 12, eventTime: at(140), activityTaskCompletedEventAttributes: { scheduledEventId: 13 } },
    { eventId: 16, eventType: 5, eventTime: at(300) },
    { eventId: 17, eventType: 6, eventTime: at(301) },
    { eventId: 18, eventType: 7, eventTime: at(390) },
    {
      eventId: 19,
      eventType: 41,
      eventTime: at(390),
      workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { input: { name: 'verify' } } },
    },
    { eventId: 20, eventType: 25, eventTime: at(390) },
    {
      eventId: 21,
      eventType: 43,
      eventTime: at(390),
      workflowExecutionUpdateCompletedEventAttributes: { acceptedEventId: 19 },
    },
  ];
  const evs = normalize(events);

  it('splits an initiate into API, workflow task, issue activity and answer, summing to the total', () => {
    const stages = initiateStages(evs, { sentAt: T0, answeredAt: T0 + 115 })!;
    expect(Object.values(stages)).toEqual([10, 5, 5, 2, 80, 6, 7, 115]);
    const parts = Object.entries(stages)
      .filter(([k]) => k !== 'total')
      .reduce((a, [, v]) => a + v, 0);
    expect(parts).toBe(stages.total);
  });

  it('splits an initiate whose issue ran as a local activity inside the first workflow task', () => {
    const local: RawEvent[] = [
      { eventId: 1, eventType: 1, eventTime: at(10) },
      { eventId: 2, eventType: 5, eventTime: at(10) },
      { eventId: 3, eventType: 6, eventTime: at(15) },
      { eventId: 4, eventType: 7, eventTime: at(95) },
      {
        eventId: 5,
        eventType: 41,
        eventTime: at(95),
        workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { input: { name: 'awaitIssue' } } },
      },
      { eventId: 6, eventType: 25, eventTime: at(95) },
      {
        eventId: 7,
        eventType: 43,
        eventTime: at(95),
        workflowExecutionUpdateCompletedEventAttributes: { acceptedEventId: 5 },
      },
    ];
    const stages = initiateStages(normalize(local), { sentAt: T0, answeredAt: T0 + 100 })!;
    expect(Object.values(stages)).toEqual([10, 5, 80, 0, 5, 100]);
    expect(Object.keys(stages)[2]).toContain('local activity');
  });

  it('times delivery from the deliver activity to the provider accepting the message', () => {
    expect(Object.values(deliveryStages(evs, { sentAt: T0, outboxAt: T0 + 130 })!)).toEqual([1, 21, 31, 130]);
  });

  it('splits a verify around the workflow task that accepted the verify update', () => {
    expect(Object.values(verifyStages(evs, { sentAt: T0 + 290, answeredAt: T0 + 400 })!)).toEqual([11, 89, 10, 110]);
  });

  it('gives up rather than guessing when an event is missing', () => {
    expect(
      initiateStages(normalize(events.filter((e) => e.eventId !== 8)), { sentAt: T0, answeredAt: T0 + 1 }),
    ).toBeUndefined();
    expect(verifyStages(normalize(events.slice(0, 15)), { sentAt: T0, answeredAt: T0 + 1 })).toBeUndefined();
  });
});

describe('bench: histogram deltas between two scrapes', () => {
  it('reports every series that observed something, with its mean', () => {
    const before = parsePrometheus(
      'a_seconds_sum{route="/x",service="warden"} 1\na_seconds_count{route="/x",service="warden"} 10\nb_seconds_sum 5\nb_seconds_count 5',
    );
    const after = parsePrometheus(
      'a_seconds_sum{route="/x",service="warden"} 3\na_seconds_count{route="/x",service="warden"} 30\nb_seconds_sum 5\nb_seconds_count 5\nc_seconds_sum 0.2\nc_seconds_count 2',
    );
    expect(histogramDeltas(before, after)).toEqual([
      { name: 'a_seconds', labels: { route: '/x' }, count: 20, meanMs: 100 },
      { name: 'c_seconds', labels: {}, count: 2, meanMs: 100 },
    ]);
  });
});

describe('bench: a run of named scenarios merges into the previous results', () => {
  const base = (date: string, scenarios: Record<string, unknown>, errors: Record<string, string> = {}): BenchReport =>
    ({
      schema: 1,
      mode: 'full',
      machine: { date },
      scenarios,
      scenarioRuns: Object.fromEntries(
        [...Object.keys(scenarios), ...Object.keys(errors)].map((n) => [
          n,
          { date, commit: 'c', loadAverageAtStart: 0, boundOpsPerSec: 1 },
        ]),
      ),
      errors,
      targets: [],
    }) as unknown as BenchReport;

  it('replaces only what the new run measured and keeps the rest', () => {
    const previous = base('d1', { sweep: 1, compromisedToken: 'old' }, { peer: 'boom' });
    const merged = mergeReports(previous, base('d2', { compromisedToken: 'new', peer: 2 }));
    expect(merged.scenarios).toEqual({ sweep: 1, compromisedToken: 'new', peer: 2 });
    expect(merged.errors).toEqual({});
    expect(merged.scenarioRuns.sweep!.date).toBe('d1');
    expect(merged.scenarioRuns.compromisedToken!.date).toBe('d2');
    expect(merged.machine.date).toBe('d1');
  });

  it('never merges a split-topology run into an all-cores one', () => {
    const previous = base('d1', { sweep: 1, compromisedToken: 'old' });
    const next = {
      ...base('d2', { sweep: 2 }),
      warden: { embedded: true, rateLimits: '', pinning: { wardenCores: [1], otherCores: [0] } },
    };
    expect(mergeReports(previous, next)).toBe(next);
  });

  it('starts afresh when there is nothing to merge into', () => {
    const next = base('d2', { peer: 2 });
    expect(mergeReports(undefined, next)).toBe(next);
  });
});
