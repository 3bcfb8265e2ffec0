/**
 * Every runbook, one entry each: its URL name (`/admin/api/v1/runbooks/<name>`, the key), the
 * incident type that starts it as a child, its workflow type, and the parameters
 * `POST /runbooks/<name>` accepts (every one optional: an incident's child runs on the
 * defaults). The API, the incident workflow and the runbook workflows all read it, so it stays
 * deterministic: plain values and TypeBox schemas, nothing that does I/O.
 *
 * Adding a runbook: write its workflow (src/workflows/runbooks/framework.ts says how), export it
 * from src/workflows/index.ts, add its entry here. The compiler refuses an entry whose workflow
 * type is not exported there.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ENDPOINT_PATTERN, POOL_LIMITS } from './database';
import { PROVIDERS } from './delivery';
import type { IncidentType } from './incidents';
import type * as workflows from '../workflows';

const Iso = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$' });
const Ids = (max: number) => Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: max });
const Count = (maximum: number, minimum = 1) => Type.Optional(Type.Integer({ minimum, maximum }));
const strict = <P extends Record<string, TSchema>>(props: P) => Type.Object(props, { additionalProperties: false });

interface RunbookEntry {
  incidentType: IncidentType;
  workflowType: keyof typeof workflows;
  params: TSchema;
  /** whether the run takes the markFalsePositives update */
  falsePositives?: boolean;
}

export const RUNBOOKS = {
  'compromised-token': {
    incidentType: 'compromised_token',
    workflowType: 'compromisedTokenRunbook',
    params: strict({
      /** how long the IP blocks last (default 24 h) */
      blockMinutes: Count(43_200),
      /** forensic window; default the 24 h before the export */
      since: Type.Optional(Iso),
      until: Type.Optional(Iso),
      /** bcrypt comparisons the leak scan may spend confirming candidates (default 2000) */
      leakScanMaxComparisons: Count(1_000_000, 0),
    }),
  },
  'provider-outage': {
    incidentType: 'provider_outage',
    workflowType: 'providerOutageRunbook',
    params: strict({
      provider: Type.Optional(Type.Union(PROVIDERS.map((p) => Type.Literal(p)))),
      channel: Type.Optional(Type.Union([Type.Literal('sms'), Type.Literal('email')])),
      pollSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 3600 })),
      healthyChecks: Count(100),
      maxWatchHours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 168 })),
      since: Type.Optional(Iso),
      until: Type.Optional(Iso),
      confirmFailures: Count(1_000_000),
      resendLimit: Count(10_000),
      validationUser: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      retryRelief: Type.Optional(Type.Boolean()),
      retryReliefUsers: Count(1_000_000),
      retryReliefFactor: Type.Optional(Type.Number({ exclusiveMinimum: 1, maximum: 100 })),
    }),
  },
  'abuse-mitigation': {
    incidentType: 'abuse',
    workflowType: 'abuseMitigationRunbook',
    falsePositives: true,
    params: strict({
      blockThreshold: Count(1_000_000),
      blockTtlMinutes: Count(10_080),
      top: Count(100),
      tightened: Type.Optional(
        strict({ perUser: Count(1_000_000), perIp: Count(1_000_000), windowSeconds: Count(86_400) }),
      ),
      captchaThreshold: Count(1000),
      captchaWindowSeconds: Count(86_400, 10),
      quietRatePerMinute: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000 })),
      quietMinutes: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1440 })),
      pollSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 3600 })),
      maxWatchHours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 168 })),
      falsePositives: Type.Optional(Ids(500)),
      neverBlock: Type.Optional(Ids(100)),
    }),
  },
  'db-failover': {
    incidentType: 'db_connectivity',
    workflowType: 'dbFailoverRunbook',
    params: strict({
      /** host:port of the standby to promote; default the most advanced reachable standby */
      replica: Type.Optional(Type.String({ pattern: ENDPOINT_PATTERN.source, maxLength: 300 })),
      /** the temporary pool; default max_open_conns 50, max_idle_conns 10 (docs/incident-response.md) */
      pool: Type.Optional(
        strict({
          max: Type.Integer({ minimum: 1, maximum: POOL_LIMITS.max }),
          maxIdle: Type.Integer({ minimum: 0, maximum: POOL_LIMITS.max }),
        }),
      ),
      /** read-only degradation: `auto` only while no server takes writes, `always`, `never` */
      readOnly: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('always'), Type.Literal('never')])),
      /** `auto`: promote a replica when no server takes writes; `never`: investigate only */
      failover: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('never')])),
    }),
  },
} as const satisfies Record<string, RunbookEntry>;

export type RunbookName = keyof typeof RUNBOOKS;
export type RunbookWorkflowType = (typeof RUNBOOKS)[RunbookName]['workflowType'];
/** What `params` a runbook's workflow receives. */
export type RunbookParams<N extends RunbookName> = Static<(typeof RUNBOOKS)[N]['params']>;

export const RUNBOOK_NAMES = Object.keys(RUNBOOKS) as RunbookName[];

/** The runbook an incident of this type starts as its child, if any. */
export function runbookOfIncident(type: IncidentType): { name: RunbookName; workflowType: string } | undefined {
  const name = RUNBOOK_NAMES.find((n) => RUNBOOKS[n].incidentType === type);
  return name && { name, workflowType: RUNBOOKS[name].workflowType };
}

/** The runbook a workflow type runs (a run found in Temporal without its projection row). */
export function runbookOfWorkflowType(type: string): RunbookName | undefined {
  return RUNBOOK_NAMES.find((n) => RUNBOOKS[n].workflowType === type);
}
