/**
 * TLS in front of the plaintext Temporal dev server, which has no TLS of its own: a throwaway
 * PKI made with openssl, a TLS-terminating proxy (mTLS unless told otherwise) that pipes each
 * accepted connection to the dev server, and an HTTP/2 endpoint that records the headers of
 * the gRPC calls it receives.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2, { type IncomingHttpHeaders } from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

export interface TestPki {
  dir: string;
  /** the CA that signed the server and client certificates */
  caFile: string;
  /** a CA that signed nothing here: trusting it instead must fail */
  otherCaFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** the only name (SAN) in the server certificate */
  serverName: string;
  remove(): void;
}

/**
 * A CA, a server certificate for `serverName` only (no IP address: connecting to 127.0.0.1
 * needs the server name override) and a client certificate, valid for two days, in a temp dir.
 */
export function createTestPki(serverName = 'temporal.warden.test'): TestPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-pki-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw new Error(
        `cannot make the test certificates (openssl ${args[0]}): ${missing ? 'openssl is not installed' : String(err)}`,
        { cause: err },
      );
    }
  };
  const key = (name: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  const ca = (name: string) => {
    key(name);
    openssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.pem`);
  };
  const issue = (name: string, extensions: string) => {
    key(name);
    writeFileSync(file(`${name}.ext`), extensions);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    // signed by the CA, with a random serial (no serial file next to the CA)
    const csr = ['-req', '-in', `${name}.csr`, '-extfile', `${name}.ext`, '-days', '2', '-out', `${name}.pem`];
    openssl('x509', ...csr, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`);
  };
  try {
    ca('ca');
    ca('other-ca');
    issue('server', `subjectAltName=DNS:${serverName}\nextendedKeyUsage=serverAuth\n`);
    issue('client', 'extendedKeyUsage=clientAuth\n');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    caFile: file('ca.pem'),
    otherCaFile: file('other-ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    serverName,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

export interface TlsProxy {
  /** `127.0.0.1:<port>`: give it as TEMPORAL_ADDRESS */
  address: string;
  /** connections whose handshake passed and that were piped to the target */
  accepted(): number;
  /** why the proxy refused handshakes (e.g. no client certificate) */
  refused(): string[];
  close(): Promise<void>;
}

/**
 * Terminates TLS with the server certificate of `pki` (ALPN h2, which gRPC clients insist on)
 * and, unless `clientCert: 'optional'`, requires a client certificate signed by its CA.
 */
export async function startTlsProxy(options: {
  target: string;
  pki: TestPki;
  clientCert?: 'required' | 'optional';
}): Promise<TlsProxy> {
  const { pki } = options;
  const target = hostPort(options.target);
  const required = (options.clientCert ?? 'required') === 'required';
  const sockets = new Set<net.Socket>();
  const refused: string[] = [];
  let accepted = 0;
  const server = tls.createServer({
    key: readFileSync(pki.serverKeyFile),
    cert: readFileSync(pki.serverCertFile),
    ca: readFileSync(pki.caFile),
    requestCert: required,
    rejectUnauthorized: required,
    ALPNProtocols: ['h2'],
  });
  server.on('tlsClientError', (err) => refused.push(err.message));
  server.on('secureConnection', (socket) => {
    accepted++;
    const upstream = net.connect(target.port, target.host);
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        socket.destroy();
        upstream.destroy();
      });
    }
    socket.pipe(upstream).pipe(socket);
  });
  const address = await listen(server);
  return {
    address,
    accepted: () => accepted,
    refused: () => [...refused],
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface GrpcRecorder {
  /** `127.0.0.1:<port>` */
  address: string;
  /** every call received: its method path and request headers */
  calls(): Array<{ path: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/**
 * An HTTP/2 server over TLS (server certificate of `pki`) that records each gRPC call and
 * answers it with one empty message and status OK: enough for a connection to be established
 * (GetSystemInfo), and for any call whose response has only optional fields.
 */
export async function startGrpcRecorder(pki: TestPki): Promise<GrpcRecorder> {
  const calls: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({
    key: readFileSync(pki.serverKeyFile),
    cert: readFileSync(pki.serverCertFile),
    ALPNProtocols: ['h2'],
  });
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => session.destroy());
  });
  server.on('stream', (stream, headers) => {
    calls.push({ path: String(headers[':path']), headers });
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      // gRPC framing: not compressed, length 0
      stream.end(Buffer.alloc(5));
    });
  });
  const address = await listen(server);
  return {
    address,
    calls: () => [...calls],
    async close() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
