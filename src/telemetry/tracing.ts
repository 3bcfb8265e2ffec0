/**
 * OpenTelemetry traces from the API through Temporal workflows to activities. Off unless
 * OTEL_EXPORTER_OTLP_ENDPOINT is set (or a test passes an exporter): then no tracer, no
 * interceptor and no HTTP hook exists at all, so tracing costs nothing.
 *
 * The tracer is handed to each instrumentation explicitly instead of being registered as
 * the global provider, so a second runtime in the process (tests) never fights over it; only
 * the context manager and the W3C propagator are process-wide, and both are stateless.
 */
import * as otel from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type ExportResult, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Config } from '../config';

export interface Tracing {
  tracer: otel.Tracer;
  resource: Resource;
  /** also receives the workflow spans the worker collects through the interceptors' sink */
  spanProcessor: SpanProcessor;
  /** flushes pending spans and stops exporting */
  shutdown(): Promise<void>;
}

/** Workflow-side interceptors; bundles of workflow code must include them for workflow spans. */
export const TRACING_WORKFLOW_MODULES = [
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'),
];

let propagationInstalled = false;
function installContextPropagation(): void {
  if (propagationInstalled) return;
  propagationInstalled = true;
  otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  otel.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

export function createTracing(
  config: Pick<Config, 'tracing'>,
  options: { exporter?: SpanExporter } = {},
): Tracing | undefined {
  const endpoint = config.tracing.otlpEndpoint?.replace(/\/+$/, '');
  const exporter =
    options.exporter ??
    (endpoint ? new OTLPTraceExporter({ url: `${endpoint}/v1/traces`, timeoutMillis: 5000 }) : undefined);
  if (!exporter) return undefined;
  installContextPropagation();
  const resource = new Resource({ [ATTR_SERVICE_NAME]: config.tracing.serviceName });
  const redacting = new RedactingSpanExporter(exporter);
  // a test's in-memory exporter sees every span as it ends; OTLP gets batches off the hot path
  const spanProcessor = options.exporter
    ? new SimpleSpanProcessor(redacting)
    : new BatchSpanProcessor(redacting, { maxQueueSize: 4096 });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  return {
    tracer: provider.getTracer('warden'),
    resource,
    spanProcessor,
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Secrets and PII must never reach a trace backend (the leak check expects zero
 * token attributes in spans). Spans are built from ids and route templates only;
 * this scrubs, as configuration rather than convention, anything shaped like an email, a
 * phone number, a 6-digit code or a long hex token from attribute values, event attributes
 * (exception messages) and status messages before export, and drops object-valued attributes.
 */
const SCRUB: Array<[RegExp, string]> = [
  [/[\w.+-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}\b/g, '[email]'],
  // E.164 as Warden stores phones (+15555550100), also with spaces or dashes
  [/\+\d[\d\s().-]{6,}\d/g, '[phone]'],
  [/\b\d{6}\b/g, '[code]'],
  [/\b[a-f0-9]{32,}\b/gi, '[hex]'],
];

export function scrub(value: string): string {
  return SCRUB.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), value);
}

// ids Temporal and the SDK generate (run ids, the worker build's hash): never user data, and
// a build hash looks like the leak scan's hex-token pattern
const GENERATED_IDS = new Set([
  'currentBuildId',
  'runId',
  'run_id',
  'firstExecutionRunId',
  'originalExecutionRunId',
  'temporalUpdateId',
]);

function scrubAttributes(attributes: otel.Attributes): otel.Attributes {
  const out: otel.Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    // Workflow spans carry the whole workflowInfo, objects included (memo, search attributes):
    // objects are not valid attribute values, and a memo is exactly where PII could sit
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) continue;
    if (typeof value === 'string') out[key] = GENERATED_IDS.has(key) ? value : scrub(value);
    else if (Array.isArray(value))
      out[key] = value.map((v) => (typeof v === 'string' ? scrub(v) : v)) as otel.AttributeValue;
    else out[key] = value;
  }
  return out;
}

function redactSpan(span: ReadableSpan): ReadableSpan {
  // a view over the original: methods and getters still resolve through the prototype
  return Object.create(span, {
    name: { value: scrub(span.name) },
    attributes: { value: scrubAttributes(span.attributes) },
    events: {
      value: span.events.map((e) => ({
        ...e,
        name: scrub(e.name),
        attributes: e.attributes && scrubAttributes(e.attributes),
      })),
    },
    status: { value: { ...span.status, message: span.status.message && scrub(span.status.message) } },
    links: { value: span.links.map((l) => ({ ...l, attributes: l.attributes && scrubAttributes(l.attributes) })) },
  }) as ReadableSpan;
}

export class RedactingSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans.map(redactSpan), resultCallback);
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
