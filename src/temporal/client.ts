import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { Config } from '../config';
import type { SubjectKeySource } from '../privacy/subjectKeys';
import type { Tracing } from '../telemetry/tracing';
import { EncryptionCodec, loadPayloadKeyring } from './codec';
import { SubjectCodec } from './subjectCodec';
import { temporalConnectionOptions, temporalTransport, type TemporalConnectionOptions } from './connectionOptions';

/**
 * The one data converter every client and worker uses: payloads are encrypted at rest, and in
 * production nothing unencrypted is read. With the per-user keys (every Warden process has
 * them), a payload carrying a user's data is encrypted with that user's key first
 * (src/temporal/subjectCodec.ts); codecs encode in order and decode in reverse.
 */
export function createDataConverter(
  config: Pick<Config, 'keys' | 'env'>,
  subjectKeys?: SubjectKeySource,
): DataConverter {
  const codec = new EncryptionCodec(loadPayloadKeyring(config.keys), { requireEncrypted: config.env === 'production' });
  return { payloadCodecs: subjectKeys ? [new SubjectCodec(subjectKeys), codec] : [codec] };
}

/**
 * `Connection.connect` keeps retrying until its deadline and then only says so; one call without
 * retries tells why (refused, a handshake the server rejected, a certificate not trusted).
 */
async function whyUnreachable(options: TemporalConnectionOptions): Promise<string | undefined> {
  const probe = Connection.lazy({ ...options, interceptors: [] });
  try {
    await probe.withDeadline(Date.now() + 3000, () => probe.workflowService.getSystemInfo({}));
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    const last = /Last error: ([\s\S]*?)(?:\. Resolution note:.*)?$/.exec(message)?.[1] ?? message;
    return last.replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)$/, '').trim();
  } finally {
    await probe.close();
  }
}

export interface TemporalClient {
  client: Client;
  connection: Connection;
  close(): Promise<void>;
}

export async function connectTemporal(
  config: Pick<Config, 'temporal' | 'keys' | 'env'>,
  { tracing, subjectKeys }: { tracing?: Tracing; subjectKeys?: SubjectKeySource } = {},
): Promise<TemporalClient> {
  const options = temporalConnectionOptions(config.temporal);
  let connection: Connection;
  try {
    connection = await Connection.connect(options);
  } catch (err) {
    const reason = (await whyUnreachable(options)) ?? (err as Error).message;
    throw new Error(`cannot reach Temporal at ${options.address} (${temporalTransport(config.temporal)}): ${reason}`, {
      cause: err,
    });
  }
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: createDataConverter(config, subjectKeys),
    // starts, signals, updates and queries become spans, and carry the trace to the workflow
    interceptors: tracing
      ? { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer })] }
      : undefined,
  });
  return { client, connection, close: () => connection.close() };
}
