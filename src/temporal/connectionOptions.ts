/**
 * How every Warden process reaches the Temporal frontend: the API's and the tools' client
 * (`Connection`, src/temporal/client.ts) and the worker's `NativeConnection`
 * (src/worker/worker.ts) take the same options from here, so they never disagree on TLS.
 */
import type { TLSConfig } from '@temporalio/client';
import type { Config } from '../config';

/**
 * What `Connection.connect` and `NativeConnection.connect` both accept; `apiKey` becomes
 * `authorization: Bearer <key>` on every call.
 */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

/**
 * Plaintext with only an address (the dev server), or TLS: the CA to trust (the system's roots
 * when unset), the client certificate pair for mTLS, a server name override, and the API key
 * (which the config only accepts with TLS). The `temporal-namespace` header Temporal Cloud
 * routes on needs no option: the client and the worker add it to each call from its namespace.
 */
export function temporalConnectionOptions(temporal: Config['temporal']): TemporalConnectionOptions {
  const { tls, apiKey } = temporal;
  return {
    address: temporal.address,
    ...(tls
      ? {
          tls: {
            ...(tls.ca ? { serverRootCACertificate: tls.ca } : {}),
            ...(tls.clientCert ? { clientCertPair: tls.clientCert } : {}),
            ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
          },
        }
      : {}),
    ...(apiKey ? { apiKey } : {}),
  };
}

/** For the start logs: how Temporal is reached, never a key or a file's contents. */
export function temporalTransport(temporal: Pick<Config['temporal'], 'tls' | 'apiKey'>): string {
  if (!temporal.tls) return 'plaintext';
  const tls = temporal.tls.clientCert ? 'mTLS' : 'TLS';
  return temporal.apiKey ? `${tls} with an API key` : tls;
}
