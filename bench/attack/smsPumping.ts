/**
 * SMS pumping on one number prefix (docs/delivery.md#sms-pumping): the attacker has fake users
 * signed up with numbers in one range (here through the admin users API, as an app's backend
 * signs users up) and starts sign-ins for them at a steady rate from many addresses, never
 * typing a code in. The defence is Warden's periodic evaluation: it blocks the prefix once its
 * volume is high and its conversion low, and opens an abuse incident.
 *
 * Counted: the messages the sandbox's outbox received for the prefix (what the range's operator
 * would be paid for), when the block appeared in the admin API, the messages that still came
 * after it (the pump goes on for a while to show it holds), and the incident the block opened.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigSchema } from '../../src/config/schema';
import { parseWindows } from '../../src/config/smsPumping';
import { durationMs } from '../../src/shared/format';
import { mapLimited } from '../lib/flows';
import { runOpenLoop } from '../lib/openLoop';
import { Outbox } from '../lib/outbox';
import { adminGet, benchAddress, countAnswer, createUser, publicPost, type ShedCount } from './client';
import type { Answers, Attack, AttackTarget } from './types';

/** The evaluation's settings as the environment spells them (WARDEN_SMS_PUMPING_*). */
export interface PumpingSettings {
  interval: string;
  windows: string;
  grace: string;
}

export const DEFAULT_PUMPING_SETTINGS: PumpingSettings = {
  interval: ConfigSchema.properties.WARDEN_SMS_PUMPING_INTERVAL.default,
  windows: ConfigSchema.properties.WARDEN_SMS_PUMPING_WINDOWS.default,
  grace: ConfigSchema.properties.WARDEN_SMS_PUMPING_GRACE.default,
};

export interface PumpingOptions {
  /** digits after `+` every fake number starts with: the prefix a block should name */
  prefix: string;
  /** fake users, each with a number of its own in the range */
  users: number;
  ratePerSecond: number;
  addresses: number;
  /** first address, as an offset into 198.18.0.0/15 */
  addressBase: number;
  /** pump at most this long without a block */
  maxSeconds: number;
  /** go on pumping this long after the block, to show nothing more gets through */
  afterBlockSeconds: number;
  incidentTimeoutSeconds: number;
  /** what the target runs with */
  settings: PumpingSettings;
}

export interface BlockEstimate {
  /** messages when the evaluation runs the moment the rule is met */
  least: number;
  /** messages when it runs a full interval later */
  most: number;
}

export interface PumpingResult {
  prefix: string;
  users: number;
  ratePerSecond: number;
  initiates: number;
  settings: PumpingSettings;
  /** seconds from the first initiate until the block was seen in the admin API; null: no block */
  blockedAfterSeconds: number | null;
  blockReason: string | null;
  /** messages the prefix received in all */
  messagesSent: number;
  /** of them, those that arrived after the block was seen */
  messagesAfterBlock: number;
  incidentId: string | null;
  incidentAfterSeconds: number | null;
  /** prefixes blocked besides the pumped one */
  otherBlocks: string[];
  /** what the rule predicts for this rate, with the run's settings and with the defaults */
  predicted: BlockEstimate;
  predictedAtDefaults: BlockEstimate;
  shed: number;
  answers: Answers;
}

interface Block {
  prefix: string;
  reason: string;
  incident_id: string | null;
  incident_workflow_id: string | null;
}

/**
 * Messages sent to a prefix pumped at `rate` before the evaluation can block it: a window judges
 * once it holds its volume (minMessages / rate seconds) and half the challenges are older than
 * the grace (2 × grace seconds); the evaluation then runs within one interval.
 */
export function blockEstimate(rate: number, settings: PumpingSettings): BlockEstimate {
  const fail = (message: string) => new Error(message);
  const grace = durationMs(settings.grace)! / 1000;
  const interval = durationMs(settings.interval)! / 1000;
  const judged = Math.min(
    ...parseWindows(settings.windows, fail).map((w) => Math.max(w.minMessages / rate, 2 * grace)),
  );
  return { least: Math.ceil(rate * judged), most: Math.ceil(rate * (judged + interval)) };
}

async function prefixMessages(outbox: Outbox, prefix: string): Promise<number> {
  return (await outbox.all()).filter((m) => m.channel === 'sms' && m.to.startsWith(`+${prefix}`)).length;
}

async function blocks(target: AttackTarget): Promise<Block[]> {
  return (await adminGet<{ blocks: Block[] }>(target, '/delivery/sms/prefix-blocks')).body.blocks;
}

export const smsPumpingAttack: Attack<PumpingOptions, PumpingResult> = {
  name: 'smsPumping',
  title: 'SMS pumping on one prefix through many fake users',

  async run(target, options, log) {
    const { prefix } = options;
    const digits = 11 - prefix.length;
    const fakes = Array.from({ length: options.users }, (_, i) => ({
      sub: `pump-${prefix}-${i + 1}`,
      phone: `+${prefix}${String(i + 1).padStart(digits, '0')}`,
    }));
    const created = await mapLimited(fakes, 4, (u) => createUser(target, u.sub, u.phone));
    if (created.failed > 0) throw new Error(`${created.failed} fake users not created: ${created.firstError}`);
    const outbox = new Outbox(target.sandboxUrl);
    const answers: Answers = {};
    const shed: ShedCount = { shed: 0 };
    const stop = new AbortController();
    const began = performance.now();
    const since = () => Math.round(performance.now() - began) / 1000;
    let blockedAfter: number | null = null;
    let block: Block | undefined;
    let atBlock = 0;

    const pump = runOpenLoop({
      ratePerSecond: options.ratePerSecond,
      durationMs: options.maxSeconds * 1000,
      signal: stop.signal,
      fire: async ({ index }) => {
        const res = await publicPost(
          target,
          '/otp/initiate',
          { user_id: fakes[index % fakes.length]!.sub },
          { ip: benchAddress(options.addressBase + (index % options.addresses)) },
          shed,
        );
        countAnswer(answers, res);
      },
    });
    // the admin API's list of blocks in force, watched while the pump runs
    const watch = (async () => {
      while (!stop.signal.aborted) {
        const found = (await blocks(target)).find((b) => b.prefix === prefix || prefix.startsWith(b.prefix));
        if (found) {
          block = found;
          blockedAfter = since();
          atBlock = await prefixMessages(outbox, prefix);
          log(`smsPumping: +${found.prefix} blocked after ${blockedAfter} s, ${atBlock} messages: ${found.reason}`);
          await sleep(options.afterBlockSeconds * 1000);
          stop.abort();
          return;
        }
        if (since() > options.maxSeconds) return;
        await sleep(500);
      }
    })();
    const pumped = await pump;
    stop.abort();
    await watch;

    // sends still in flight when the pump stopped land within a few seconds
    let sent = await prefixMessages(outbox, prefix);
    for (let quiet = 0; quiet < 4;) {
      await sleep(500);
      const now = await prefixMessages(outbox, prefix);
      quiet = now === sent ? quiet + 1 : 0;
      sent = now;
    }
    let incidentId: string | null = null;
    let incidentAfter: number | null = null;
    const all = await blocks(target);
    if (block) {
      const deadline = Date.now() + options.incidentTimeoutSeconds * 1000;
      while (Date.now() < deadline) {
        const mine = (await blocks(target)).find((b) => b.prefix === block!.prefix);
        if (mine?.incident_id) {
          incidentId = mine.incident_id;
          incidentAfter = since();
          break;
        }
        await sleep(500);
      }
    }
    return {
      prefix,
      users: options.users,
      ratePerSecond: options.ratePerSecond,
      initiates: pumped.fired,
      settings: options.settings,
      blockedAfterSeconds: blockedAfter,
      blockReason: block?.reason ?? null,
      messagesSent: sent,
      messagesAfterBlock: block ? Math.max(0, sent - atBlock) : 0,
      incidentId,
      incidentAfterSeconds: incidentAfter,
      otherBlocks: all.map((b) => b.prefix).filter((p) => p !== block?.prefix),
      predicted: blockEstimate(options.ratePerSecond, options.settings),
      predictedAtDefaults: blockEstimate(options.ratePerSecond, DEFAULT_PUMPING_SETTINGS),
      shed: shed.shed,
      answers,
    };
  },

  row(r) {
    const settings = `interval ${r.settings.interval}, windows ${r.settings.windows}, grace ${r.settings.grace}`;
    return {
      attack: `SMS pumping on one prefix through ${r.users} fake users (${r.ratePerSecond}/s)`,
      reported: 'messages sent to the prefix before the block; incident opened',
      measured: `${r.messagesSent} messages${r.blockedAfterSeconds === null ? ', NO block' : ` (block after ${r.blockedAfterSeconds} s)`}; incident ${r.incidentId ? `yes (${r.incidentId})` : 'NO'}; ${settings} (at the defaults ${r.predictedAtDefaults.least}-${r.predictedAtDefaults.most} predicted)`,
      target: 'at most 50 messages; incident yes',
      pass: r.blockedAfterSeconds !== null && r.messagesSent <= 50 && r.incidentId !== null,
    };
  },

  line(r) {
    return `smsPumping: ${r.initiates} initiates at ${r.ratePerSecond}/s for ${r.users} fake users in +${r.prefix}: ${r.messagesSent} messages sent (${r.messagesAfterBlock} after the block was seen), block ${r.blockedAfterSeconds === null ? 'NONE' : `after ${r.blockedAfterSeconds} s`}, incident ${r.incidentId ?? 'NONE'}${r.otherBlocks.length ? `, other blocks ${r.otherBlocks.join(',')}` : ''}; predicted ${r.predicted.least}-${r.predicted.most} with interval ${r.settings.interval}, windows ${r.settings.windows}, grace ${r.settings.grace}; ${r.predictedAtDefaults.least}-${r.predictedAtDefaults.most} at the defaults`;
  },
};
