import { ProviderTransientError } from './errors';
import type { ExternalService } from './types';

/**
 * Runs `call` with a hard deadline. SDK timeouts are configured too, but some are socket-idle
 * timers rather than deadlines; this one is what `config.providers.timeoutMs` promises.
 * The AbortSignal lets SDKs that accept one stop their request early.
 */
export async function withDeadline<T>(
  provider: ExternalService,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(
        new ProviderTransientError({ provider, reason: `no answer within ${timeoutMs} ms`, providerCode: 'TIMEOUT' }),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([call(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
