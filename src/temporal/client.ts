import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { Config } from '../config';
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

export async function connectTemporal(config: Pick<Config, 'temporal' | 'keys'>): Promise<TemporalClient> {
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: createDataConverter(config),
  });
  return { client, connection, close: () => connection.close() };
}
