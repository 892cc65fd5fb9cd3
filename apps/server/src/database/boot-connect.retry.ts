import { Logger } from '@nestjs/common';
import { DatabaseUnreachableError } from './database-unreachable.error';
import { StorageException, StorageExceptionCode } from './storage.exception';

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;
/** Name lookups fail this way while an orchestrator has not started (or named) the database yet. */
const NOT_YET_RESOLVABLE = new Set(['EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH']);

/** `host:port` of a PostgreSQL URL: what the logs may say about it (the URL itself may hold a password). */
export function databaseAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  } catch {
    return 'the configured database';
  }
}

/** Whether a failure to connect may go away by itself (PostgreSQL not up yet), rather than being a mistake to report. */
function transient(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return (
    (typeof code === 'string' && NOT_YET_RESOLVABLE.has(code)) || StorageException.from(error).code === StorageExceptionCode.Unavailable
  );
}

function reason(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * Runs `connect` (the first contact with PostgreSQL at boot: the migrations) until it succeeds, retrying with backoff
 * (250 ms doubling to 5 s) while PostgreSQL cannot be reached, for at most `timeoutMs`: in an orchestrator the server
 * often starts before its database. Each failed attempt is logged once, naming the host and port only. A failure that
 * waiting does not fix (a wrong password, a missing database) is not retried.
 */
export async function retryUntilReachable<T>(
  connect: () => Promise<T>,
  options: { url: string; timeoutMs: number; logger: Logger },
): Promise<T> {
  const address = databaseAddress(options.url);
  const deadline = Date.now() + options.timeoutMs;
  let delay = FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await connect();
      if (attempt > 1) options.logger.log(`PostgreSQL at ${address} answered (attempt ${attempt})`);
      return result;
    } catch (error) {
      if (!transient(error)) throw error;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DatabaseUnreachableError(
          address,
          `PostgreSQL at ${address} could not be reached within DATABASE_CONNECT_TIMEOUT_MS (${options.timeoutMs} ms, ${attempt} attempts): ${reason(error)}`,
          error,
        );
      }
      const wait = Math.min(delay, left);
      options.logger.warn(`PostgreSQL at ${address} is not reachable yet (attempt ${attempt}: ${reason(error)}); retrying in ${wait} ms`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}
