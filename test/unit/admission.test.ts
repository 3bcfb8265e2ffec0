/** The admission gate (src/auth/admission.ts): slots, its short FIFO queue, and limits derived from the machine. */
import { describe, expect, it } from 'vitest';
import { admissionLimits, AdmissionGate, type Admission } from '../../src/auth/admission';

const settings = { enabled: true, sloMs: 200 };
const admittedOf = (a: Admission) => {
  if (!a.admitted) throw new Error(`shed: ${a.reason}`);
  return a;
};

describe('admission gate', () => {
  it('lets `concurrency` in at once and sheds the rest when there is no queue', async () => {
    const gate = new AdmissionGate({ concurrency: 2, queue: 0, queueWaitMs: 100 });
    const first = admittedOf(await gate.acquire());
    admittedOf(await gate.acquire());
    expect(await gate.acquire()).toEqual({ admitted: false, reason: 'queue_full' });
    expect(gate.inFlight).toBe(2);
    first.release();
    first.release(); // twice is once
    expect(gate.inFlight).toBe(1);
    admittedOf(await gate.acquire());
    expect(gate.inFlight).toBe(2);
  });

  it('queues in order, hands a freed slot to the oldest waiter, and sheds waiters that waited too long', async () => {
    const gate = new AdmissionGate({ concurrency: 1, queue: 2, queueWaitMs: 200 });
    const running = admittedOf(await gate.acquire());
    const order: string[] = [];
    const a = gate.acquire().then((r) => (order.push('a'), r));
    const b = gate.acquire().then((r) => (order.push('b'), r));
    // the queue holds two: a third is refused at once
    expect(await gate.acquire()).toEqual({ admitted: false, reason: 'queue_full' });
    expect(gate.queued).toBe(2);
    running.release();
    const first = admittedOf(await a);
    expect(first.waitedMs).toBeGreaterThanOrEqual(0);
    expect(order).toEqual(['a']);
    // b is never given a slot (a holds it): it is shed when its wait is over
    expect(await b).toEqual({ admitted: false, reason: 'queue_timeout' });
    expect(gate.queued).toBe(0);
    first.release();
    expect(gate.inFlight).toBe(0);
  });

  it('a zero wait means no queue at all', async () => {
    const gate = new AdmissionGate({ concurrency: 1, queue: 5, queueWaitMs: 0 });
    admittedOf(await gate.acquire());
    expect(await gate.acquire()).toEqual({ admitted: false, reason: 'queue_full' });
  });
});

describe('admission limits', () => {
  it('derives each gate from cores, the time of one hash and the SLO, each gate half of it', () => {
    // 2 cores, 55 ms a hash, 200 ms: 7 hashes in flight finish within the SLO, 3 for each gate
    expect(admissionLimits(settings, { cores: 2, bcryptMs: 55 })).toEqual({
      concurrency: 3,
      queue: 3,
      queueWaitMs: 50,
    });
    expect(admissionLimits(settings, { cores: 16, bcryptMs: 50 }).concurrency).toBe(32);
    // a machine slower than the SLO itself still lets one in
    expect(admissionLimits(settings, { cores: 1, bcryptMs: 900 }).concurrency).toBe(1);
  });

  it('takes configured values over derived ones', () => {
    expect(
      admissionLimits({ ...settings, concurrency: 9, queue: 0, queueWaitMs: 10 }, { cores: 2, bcryptMs: 55 }),
    ).toEqual({ concurrency: 9, queue: 0, queueWaitMs: 10 });
  });
});
