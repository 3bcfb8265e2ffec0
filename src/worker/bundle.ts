/**
 * Builds the workflow bundle ahead of time, so a worker starts without webpack:
 *   node dist/src/worker/bundle.js <output file> [--no-tracing]
 * then start the worker with WARDEN_WORKFLOW_BUNDLE=<output file>. The Dockerfile runs it at
 * image build. The bundle carries the OpenTelemetry workflow interceptors unless --no-tracing:
 * a prebuilt bundle is the only place workflow spans can come from (src/worker/worker.ts). Run
 * it with tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set, as in compose); a worker with tracing off
 * logs an error for every span such a bundle tries to hand over.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { TRACING_WORKFLOW_MODULES } from '../telemetry/tracing';

export async function buildWorkflowBundle(output: string, options: { tracing: boolean }): Promise<number> {
  const { code } = await bundleWorkflowCode({
    // the compiled workflows next to this file (dist/src/workflows), or the sources under tsx
    workflowsPath: require.resolve('../workflows'),
    ...(options.tracing ? { workflowInterceptorModules: TRACING_WORKFLOW_MODULES } : {}),
    logger: {
      trace() {},
      debug() {},
      info() {},
      log() {},
      warn: (message: string) => process.stderr.write(`${message}\n`),
      error: (message: string) => process.stderr.write(`${message}\n`),
    } as never,
  });
  mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
  writeFileSync(output, code);
  return Buffer.byteLength(code);
}

async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  const output = args.find((a) => !a.startsWith('--'));
  const unknown = args.filter((a) => a.startsWith('--') && a !== '--no-tracing');
  if (!output || unknown.length) {
    process.stderr.write('usage: bundle <output file> [--no-tracing]\n');
    return 2;
  }
  const tracing = !args.includes('--no-tracing');
  const bytes = await buildWorkflowBundle(output, { tracing });
  process.stdout.write(`workflow bundle: ${output} (${bytes} bytes, tracing interceptors ${tracing ? 'in' : 'out'})\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
