/**
 * The peer: Better Auth with its email-OTP plugin, as its documentation sets it up, on its
 * own database on the same Postgres server as Warden. Per request it does its own storage
 * (Kysely on pg; the OTP stored as a SHA-256 hash, `storeOTP: 'hashed'`) and, in
 * sendVerificationOTP, one email through the same SendGrid SDK into the same provider sandbox
 * Warden uses, awaited inside the request (Better Auth's default). No durable workflow, no
 * bcrypt. Rate limiting is off, as Warden's limits are raised for the run: the benchmark
 * measures the services, not their limiters.
 */
import http from 'node:http';
import { Client as SendGridClient } from '@sendgrid/client';
import { MailService } from '@sendgrid/mail';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';
import { emailOTP } from 'better-auth/plugins/email-otp';
import pg from 'pg';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

async function main(): Promise<void> {
  const port = Number(env('PEER_PORT'));
  const sandboxUrl = env('PEER_SANDBOX_URL');
  const users = Number(env('PEER_USERS', '0'));
  // the same pool size as Warden's (WARDEN_DB_POOL_MAX default)
  const pool = new pg.Pool({ connectionString: env('PEER_DATABASE_URL'), max: 25 });

  const sendgridHttp = new SendGridClient();
  sendgridHttp.setApiKey('SG.sandbox');
  sendgridHttp.setDefaultRequest('baseUrl', `${sandboxUrl}/`);
  const mail = new MailService();
  mail.setClient(sendgridHttp);
  mail.setTimeout(5000);

  const auth = betterAuth({
    secret: env('PEER_SECRET'),
    baseURL: `http://127.0.0.1:${port}`,
    database: pool,
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    plugins: [
      emailOTP({
        otpLength: 6,
        expiresIn: 300,
        allowedAttempts: 5,
        storeOTP: 'hashed',
        async sendVerificationOTP({ email, otp }) {
          await mail.send({
            to: email,
            from: 'Peer <no-reply@peer.example>',
            subject: 'Your sign-in code',
            text: `Your sign-in code is ${otp}. It expires in 5 minutes.`,
            trackingSettings: { clickTracking: { enable: false, enableText: false }, openTracking: { enable: false } },
          });
        },
      }),
    ],
  });

  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  if (users > 0) {
    // existing, verified users (as Warden's bench users are), so sign-in finds an account
    // instead of creating one; their own domain keeps their mail apart from Warden's
    await pool.query(
      `INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
       SELECT 'peer-' || lpad(n::text, 6, '0'), 'peer ' || n, 'peer-' || lpad(n::text, 6, '0') || '@peer.example', true, now(), now()
       FROM generate_series(1, $1::int) AS n
       ON CONFLICT DO NOTHING`,
      [users],
    );
  }

  const server = http.createServer(toNodeHandler(auth));
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.stdout.write(`peer listening http://127.0.0.1:${port}\n`);
  const stop = () => {
    server.closeAllConnections();
    server.close(() => void pool.end().finally(() => process.exit(0)));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
