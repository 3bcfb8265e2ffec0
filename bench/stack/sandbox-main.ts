/**
 * The provider sandbox in a process of its own for the benchmark: in production the
 * providers are elsewhere, so their work (and the benchmark's outbox reads) should not share
 * Warden's event loop. The outbox keeps more entries than the default, so a long run never
 * drops a message before the benchmark has read its code.
 */
import { startSandbox } from '../../src/sandbox/server';

async function main(): Promise<void> {
  const sandbox = await startSandbox({
    host: '127.0.0.1',
    port: Number(process.env.BENCH_SANDBOX_PORT ?? 0),
    maxEntries: Number(process.env.BENCH_SANDBOX_MAX_ENTRIES ?? 200_000),
  });
  process.stdout.write(`sandbox listening ${sandbox.url}\n`);
  const stop = () => {
    void sandbox.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
