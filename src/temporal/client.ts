import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { Config } from '../config';
import type { Tracing } from '../telemetry/tracing';
import { EncryptionCodec, loadPayloadKeyring } from './codec';

/** The one data converter every client and worker uses: payloads are encrypted at rest. */
export function createDataConverter(config: Pick<Config, 'keys'>): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(loadPayloadKeyring(config.keys))] };
}

export interface TemporalClient {
  client: Client;
  connection: Connection;
  close(): Promise<void>;
}

export async function connectTemporal(
  config: Pick<Config, 'temporal' | 'keys'>,
  { tracing }: { tracing?: Tracing } = {},
): Promise<TemporalClient> {
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: createDataConverter(config),
    // starts, signals, updates and queries become spans, and carry the trace to the workflow
    interceptors: tracing
      ? { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer })] }
      : undefined,
  });
  return { client, connection, close: () => connection.close() };
}
