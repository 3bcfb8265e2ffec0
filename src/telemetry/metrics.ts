import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CANARY_CHANNELS, CANARY_OUTCOMES } from '../shared/canary';
import { CHANNEL_PROVIDERS, CHANNELS } from '../shared/delivery';
import { RETENTION_TABLES } from '../shared/retention';

/**
 * One registry per process (tests make one per harness). Every metric Warden defines is
 * registered against the registry passed in, never the global default, so two apps in one
 * process never collide. Label values are bounded sets: never user ids, IPs or secrets.
 */
export function createRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'warden' });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5];

/**
 * The metric catalog: every name the alert rules and dashboards refer to is defined here, once.
 * The audit event names map to: identity.auth.token_generated -> tokens_generated,
 * identity.auth.validation_attempt -> validation_attempts, identity.auth.token_invalidated ->
 * tokens_invalidated, identity.ratelimit.exceeded -> ratelimit_exceeded.
 */
export function createMetrics(registry: Registry) {
  const registers = [registry];
  const metrics = {
    tokensGenerated: new Counter({
      name: 'warden_auth_tokens_generated_total',
      help: 'Challenges issued (identity.auth.token_generated)',
      labelNames: ['method'] as const,
      registers,
    }),
    validationAttempts: new Counter({
      name: 'warden_auth_validation_attempts_total',
      help: 'Verification attempts by outcome (identity.auth.validation_attempt)',
      labelNames: ['method', 'outcome'] as const,
      registers,
    }),
    tokensInvalidated: new Counter({
      name: 'warden_auth_tokens_invalidated_total',
      help: 'Challenges ended without success, by reason (identity.auth.token_invalidated)',
      labelNames: ['method', 'reason'] as const,
      registers,
    }),
    generationDuration: new Histogram({
      name: 'warden_auth_generation_duration_seconds',
      help: 'Token generation latency: initiate request until the challenge is issued',
      labelNames: ['method'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    authStageDuration: new Histogram({
      name: 'warden_auth_stage_duration_seconds',
      help: 'Where an auth request spends its time, by flow (initiate, verify, resend) and stage: blocklist, rate_limit (for verify and resend with the challenge row read in the same statement), budget (the destination and account guess budgets), settings, seal, workflow (the Temporal round trip, which includes hash or compare), hash and db (inside the issue activity), compare (bcrypt inside the verify check), audit',
      labelNames: ['flow', 'stage'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    validationDuration: new Histogram({
      name: 'warden_auth_validation_duration_seconds',
      help: 'Token validation latency: verify request until its answer',
      labelNames: ['method'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    rateLimitExceeded: new Counter({
      name: 'warden_ratelimit_exceeded_total',
      help: 'Requests refused by a rate limit (identity.ratelimit.exceeded)',
      labelNames: ['scope', 'action'] as const,
      registers,
    }),
    budgetRefusals: new Counter({
      name: 'warden_budget_refusals_total',
      help: 'Requests and sends refused by a budget (docs/security.md), by reason: destination_hour, destination_day (messages per phone number or email address), country_not_allowed (SMS to a country not allowed, at the send), prefix_blocked (SMS to a number prefix blocked for SMS pumping, at the send), guess_backoff, guess_budget (wrong codes per account)',
      labelNames: ['reason', 'action'] as const,
      registers,
    }),
    codeExchanges: new Counter({
      name: 'warden_code_exchanges_total',
      help: 'Authorization codes presented at /oauth/token, by outcome (exchanged, or why it was refused)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    blockedRequests: new Counter({
      name: 'warden_blocklist_rejections_total',
      help: 'Requests refused because the client IP is blocklisted',
      labelNames: ['action'] as const,
      registers,
    }),
    // admission control in front of the bcrypt work (src/api/plugins/admission.ts)
    admissionAdmitted: new Counter({
      name: 'warden_admission_admitted_total',
      help: 'Initiates and verifies let in by admission control',
      labelNames: ['action'] as const,
      registers,
    }),
    admissionShed: new Counter({
      name: 'warden_admission_shed_total',
      help: 'Initiates and verifies refused with 503 overloaded before any work, by reason: queue_full, queue_timeout',
      labelNames: ['action', 'reason'] as const,
      registers,
    }),
    admissionInFlight: new Gauge({
      name: 'warden_admission_in_flight',
      help: 'Initiates and verifies let in and not yet answered',
      labelNames: ['action'] as const,
      registers,
    }),
    admissionQueued: new Gauge({
      name: 'warden_admission_queued',
      help: 'Initiates and verifies waiting for a slot',
      labelNames: ['action'] as const,
      registers,
    }),
    admissionLimit: new Gauge({
      name: 'warden_admission_limit',
      help: 'How many initiates (verifies) the process lets in at a time; absent while admission control is off',
      labelNames: ['action'] as const,
      registers,
    }),
    admissionQueueWait: new Histogram({
      name: 'warden_admission_queue_wait_seconds',
      help: 'How long an admitted initiate or verify waited for its slot',
      labelNames: ['action'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
      registers,
    }),
    // refusals counted into the audit trail, one row per client and window (src/auth/refusals.ts)
    auditRefusals: new Counter({
      name: 'warden_audit_refusals_total',
      help: 'Refused requests counted into the audit trail, by audit event',
      labelNames: ['event'] as const,
      registers,
    }),
    auditRefusalRows: new Counter({
      name: 'warden_audit_refusal_rows_total',
      help: 'Audit rows written for refusals: the first refusal of each client, action, reason and window',
      labelNames: ['event'] as const,
      registers,
    }),
    deliveryAttempts: new Counter({
      name: 'warden_delivery_attempts_total',
      help: 'Provider send attempts (one per provider call)',
      labelNames: ['channel', 'provider'] as const,
      registers,
    }),
    deliveryFailures: new Counter({
      name: 'warden_delivery_failures_total',
      help: 'Provider send failures by error class (transient, permanent)',
      labelNames: ['channel', 'provider', 'error_class'] as const,
      registers,
    }),
    deliveryFailovers: new Counter({
      name: 'warden_delivery_failovers_total',
      help: 'Switches from one provider to another: a message moved to the next provider (scope message), a send re-sent after its receipt never came (receipt), a circuit opened (circuit), a responder or runbook switched the route (manual)',
      labelNames: ['channel', 'from', 'to', 'scope'] as const,
      registers,
    }),
    deliveryCallbacks: new Counter({
      name: 'warden_delivery_callbacks_total',
      help: 'Provider status callbacks and events by outcome (delivered, failed, ignored, unknown_message, invalid_signature, not_configured), and incoming SMS and email (inbound_success, inbound_rejected: the canary; inbound_no_run, inbound_ignored)',
      labelNames: ['provider', 'outcome'] as const,
      registers,
    }),
    deliveryReceiptTimeouts: new Counter({
      name: 'warden_delivery_receipt_timeouts_total',
      help: 'Sends a provider took but never reported (no delivered or failed receipt) within the channel deadline',
      labelNames: ['channel', 'provider'] as const,
      registers,
    }),
    circuitTransitions: new Counter({
      name: 'warden_provider_circuit_transitions_total',
      help: 'Circuit breaker transitions by the state entered (open, half_open, closed)',
      labelNames: ['channel', 'provider', 'to_state'] as const,
      registers,
    }),
    deliveryDuration: new Histogram({
      name: 'warden_delivery_send_duration_seconds',
      help: 'Provider send latency',
      labelNames: ['channel', 'provider'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    canaryRuns: new Counter({
      name: 'warden_canary_runs_total',
      help: 'Delivery canary runs by channel (sms, email) and outcome: success (the code or magic link came back through the inbound webhook and verified), rejected (it came back and did not verify), timeout (it never came back), error (the sign-in could not start)',
      labelNames: ['channel', 'outcome'] as const,
      registers,
    }),
    canaryLatency: new Histogram({
      name: 'warden_canary_latency_seconds',
      help: 'Delivery canary end to end, by channel: sign-in started until the code or magic link came back through the provider and verified',
      labelNames: ['channel'] as const,
      buckets: [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers,
    }),
    canaryLastSuccess: new Gauge({
      name: 'warden_canary_last_success_timestamp_seconds',
      help: 'Unix time of the last successful delivery canary run recorded by this process',
      labelNames: ['channel'] as const,
      registers,
    }),
    retentionDeleted: new Counter({
      name: 'warden_retention_deleted_rows_total',
      help: 'Rows deleted by retention, by table (docs/operations.md#retention)',
      labelNames: ['table'] as const,
      registers,
    }),
    retentionLastRun: new Gauge({
      name: 'warden_retention_last_run_timestamp_seconds',
      help: 'Unix time at which the last retention run finished in this process (0: none yet; take the max over workers)',
      registers,
    }),
    incidentsStarted: new Counter({
      name: 'warden_incidents_started_total',
      help: 'Incidents opened',
      labelNames: ['type', 'severity'] as const,
      registers,
    }),
    incidentEscalations: new Counter({
      name: 'warden_incident_escalations_total',
      help: 'Escalations sent',
      labelNames: ['severity', 'role'] as const,
      registers,
    }),
    incidentTimeToAcknowledge: new Histogram({
      name: 'warden_incident_time_to_acknowledge_seconds',
      help: 'Detection until acknowledgement',
      labelNames: ['severity'] as const,
      buckets: [60, 300, 900, 1800, 3600, 14_400, 86_400],
      registers,
    }),
    incidentTimeToResolve: new Histogram({
      name: 'warden_incident_time_to_resolve_seconds',
      help: 'Detection until resolution',
      labelNames: ['severity'] as const,
      buckets: [900, 3600, 14_400, 28_800, 86_400, 259_200],
      registers,
    }),
    codecRequests: new Counter({
      name: 'warden_codec_requests_total',
      help: 'Codec server requests (who reads decrypted payloads is worth watching), by operation and outcome',
      labelNames: ['operation', 'outcome'] as const,
      registers,
    }),
    slackRequests: new Counter({
      name: 'warden_slack_requests_total',
      help: 'Slack commands and interactions by endpoint and outcome (accepted, invalid_signature, stale_request, replayed_request, not_configured)',
      labelNames: ['endpoint', 'outcome'] as const,
      registers,
    }),
    alertmanagerNotifications: new Counter({
      name: 'warden_alertmanager_notifications_total',
      help: 'Alertmanager webhook notifications by group status and outcome (delivered to an incident, ignored)',
      labelNames: ['status', 'outcome'] as const,
      registers,
    }),
    runbookSteps: new Counter({
      name: 'warden_runbook_steps_total',
      help: 'Runbook steps by outcome',
      labelNames: ['runbook', 'step', 'outcome'] as const,
      registers,
    }),
    dbEndpointSwitches: new Counter({
      name: 'warden_db_endpoint_switches_total',
      help: 'This process moved to another Postgres server (failover, pinned primary, standby for reads)',
      labelNames: ['from', 'to'] as const,
      registers,
    }),
  };
  // Delivery series exist at zero from the start, so the first failures of an outage are an
  // increase that rate() sees, not a series that appears already at its final value.
  // the canary's failures are counted from zero, so the first one is an increase
  for (const channel of CANARY_CHANNELS)
    for (const outcome of CANARY_OUTCOMES) metrics.canaryRuns.inc({ channel, outcome }, 0);
  for (const table of RETENTION_TABLES) metrics.retentionDeleted.inc({ table }, 0);
  for (const channel of CHANNELS) {
    for (const provider of CHANNEL_PROVIDERS[channel]) {
      metrics.deliveryAttempts.inc({ channel, provider }, 0);
      metrics.deliveryReceiptTimeouts.inc({ channel, provider }, 0);
      for (const error_class of ['transient', 'permanent'])
        metrics.deliveryFailures.inc({ channel, provider, error_class }, 0);
    }
  }
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The runbook greps /metrics for `db_connections`: the pool's state, read at scrape time. */
export function registerPoolMetrics(
  registry: Registry,
  stats: () => { total: number; idle: number; waiting: number; max: number },
) {
  return new Gauge({
    name: 'warden_db_connections',
    help: 'Postgres pool connections by state (total, idle, in_use, waiting, max)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const s = stats();
      this.set({ state: 'total' }, s.total);
      this.set({ state: 'idle' }, s.idle);
      this.set({ state: 'in_use' }, s.total - s.idle);
      this.set({ state: 'waiting' }, s.waiting);
      this.set({ state: 'max' }, s.max);
    },
  });
}

/** Read-only degradation and the server in use, from the process's topology watcher at scrape time. */
export function registerDatabaseTopologyMetrics(
  registry: Registry,
  state: () => { current: string; role: string; readOnly: { forced: boolean; standby: boolean } },
) {
  new Gauge({
    name: 'warden_db_read_only',
    help: '1 while this process refuses writes: forced (responder or runbook) or standby (only a standby is reachable)',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      const s = state();
      this.set({ reason: 'forced' }, s.readOnly.forced ? 1 : 0);
      this.set({ reason: 'standby' }, s.readOnly.standby ? 1 : 0);
    },
  });
  new Gauge({
    name: 'warden_db_endpoint_info',
    help: 'The Postgres server this process uses (host:port) and its role; always 1',
    labelNames: ['endpoint', 'role'] as const,
    registers: [registry],
    collect() {
      const s = state();
      this.reset();
      this.set({ endpoint: s.current, role: s.role }, 1);
    },
  });
}

/** Memoises an async probe for `ttlMs`, so several gauges fed by one probe cost one call per scrape. */
function memo<T>(probe: () => Promise<T>, ttlMs = 1000): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!last || Date.now() - last.at > ttlMs) {
      const value = probe();
      last = { at: Date.now(), value };
      // a failed probe is not cached: the next scrape tries again
      value.catch(() => {
        last = undefined;
      });
    }
    return last.value;
  };
}

export interface TaskQueueSample {
  taskQueue: string;
  taskType: 'workflow' | 'activity';
  /** tasks waiting for a worker (Temporal's approximate backlog count) */
  backlog: number;
  /** age of the oldest waiting task */
  backlogAgeSeconds: number;
  /** workers that polled the queue recently */
  pollers: number;
}

/**
 * The Temporal task-queue backlog, read from the server at scrape time (DescribeTaskQueue with
 * stats): workers that cannot keep up delay every auth flow, and no pollers means no worker at all.
 * A failed probe drops the series for that scrape instead of reporting stale numbers.
 */
export function registerTaskQueueMetrics(registry: Registry, probe: () => Promise<TaskQueueSample[]>) {
  const sample = memo(probe);
  const gauge = (name: string, help: string, pick: (s: TaskQueueSample) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['task_queue', 'task_type'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const samples = await sample().catch(() => []);
        for (const s of samples) this.set({ task_queue: s.taskQueue, task_type: s.taskType }, pick(s));
      },
    });
  return {
    backlog: gauge(
      'warden_temporal_task_queue_backlog',
      'Approximate tasks waiting in the Temporal task queue',
      (s) => s.backlog,
    ),
    backlogAge: gauge(
      'warden_temporal_task_queue_backlog_age_seconds',
      'Age of the oldest task waiting in the Temporal task queue',
      (s) => s.backlogAgeSeconds,
    ),
    pollers: gauge('warden_temporal_task_queue_pollers', 'Workers polling the Temporal task queue', (s) => s.pollers),
  };
}

/**
 * The circuit breakers' state, read from `provider_circuits` at scrape time: the state is shared
 * by every worker, so every process reports the same value and none reports a stale one.
 */
export function registerCircuitMetrics(
  registry: Registry,
  probe: () => Promise<Array<{ channel: string; provider: string; state: string }>>,
) {
  const sample = memo(probe);
  return new Gauge({
    name: 'warden_provider_circuit_open',
    help: '1 while the provider circuit breaker is open (traffic goes to the backup), 0.5 half-open, 0 closed',
    labelNames: ['channel', 'provider'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await sample().catch(() => undefined);
      for (const row of rows ?? [])
        this.set(
          { channel: row.channel, provider: row.provider },
          row.state === 'open' ? 1 : row.state === 'half_open' ? 0.5 : 0,
        );
    },
  });
}

/** Open incidents by severity, read from the `incidents` projection at scrape time. */
export function registerIncidentMetrics(
  registry: Registry,
  probe: () => Promise<Array<{ severity: string; count: number }>>,
) {
  return new Gauge({
    name: 'warden_incidents_open',
    help: 'Incidents not yet resolved, by severity',
    labelNames: ['severity'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await probe().catch(() => undefined);
      if (!rows) return;
      // every severity is reported, zeros included, so a dashboard shows 0 rather than "no data"
      for (const severity of ['P0', 'P1', 'P2', 'P3']) this.set({ severity }, 0);
      for (const row of rows) this.set({ severity: row.severity }, row.count);
    },
  });
}
