/**
 * The hardware bound, run as its own process (bench/lib/bcrypt.ts starts it) so that its libuv
 * threadpool can be sized to every core: bcrypt's async API hashes on that pool, 4 threads
 * by default. Half the operations hash, half compare: initiate hashes, verify compares, and
 * both cost one bcrypt run at the same cost. Prints one JSON line.
 */
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcrypt';

async function main(): Promise<void> {
  const cost = Number(process.env.BENCH_BCRYPT_COST ?? 10);
  const seconds = Number(process.env.BENCH_BCRYPT_SECONDS ?? 5);
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const concurrency = threads * 2;
  const secret = 'bench-secret-0123456789abcdef';
  const hash = await bcrypt.hash(secret, cost);

  // one operation alone: the floor under any latency that includes a bcrypt run
  const single: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    await bcrypt.compare(secret, hash);
    single.push(performance.now() - t);
  }
  single.sort((a, b) => a - b);

  let ops = 0;
  let counting = false;
  let stop = false;
  const loop = async (n: number) => {
    for (let i = n; !stop; i++) {
      if (i % 2 === 0) await bcrypt.hash(secret, cost);
      else await bcrypt.compare(secret, hash);
      if (counting) ops += 1;
    }
  };
  const loops = Array.from({ length: concurrency }, (_, n) => loop(n));
  await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up: every thread busy
  counting = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const elapsed = performance.now() - started;
  const counted = ops;
  stop = true;
  await Promise.all(loops);
  process.stdout.write(
    JSON.stringify({
      cost,
      threads,
      concurrency,
      ops: counted,
      seconds: Math.round(elapsed) / 1000,
      opsPerSec: Math.round((counted * 1000 * 100) / elapsed) / 100,
      singleOpMs: Math.round(single[Math.floor(single.length / 2)]! * 10) / 10,
    }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
