/**
 * The provider sandbox on its own: `node dist/src/sandbox/main.js` (or tsx). `npm start` runs it
 * in-process instead; compose runs this only under the `dev` profile. It answers like Twilio,
 * Plivo, SendGrid, SES, Slack and hCaptcha, keeps what it was sent at /sandbox/messages and takes
 * faults on /sandbox/faults, all without authentication: it binds WARDEN_HOST (default 127.0.0.1)
 * on WARDEN_SANDBOX_PORT (default 8099), and compose sets 0.0.0.0 only inside its own network.
 * It reads nothing else, so it starts without Warden's tokens and keys.
 */
import { createLogger } from '../telemetry/logger';
import { startSandbox } from './server';

function portFrom(value: string | undefined): number {
  if (value === undefined || value === '') return 8099;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`WARDEN_SANDBOX_PORT must be a port number, not "${value.slice(0, 20)}"`);
  }
  return port;
}

async function main(): Promise<void> {
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'info', name: 'warden-sandbox' });
  const sandbox = await startSandbox({
    host: process.env.WARDEN_HOST ?? '127.0.0.1',
    // e.g. `provider-sandbox` on a compose network, whose Warden reads the outbox by that name
    allowedHosts: (process.env.WARDEN_SANDBOX_ALLOWED_HOSTS ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean),
    port: portFrom(process.env.WARDEN_SANDBOX_PORT),
    logger,
  });
  logger.info({ port: sandbox.port }, 'provider sandbox listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'sandbox shutting down');
    await sandbox.close();
    logger.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
