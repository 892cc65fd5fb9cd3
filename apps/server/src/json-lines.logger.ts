import { format } from 'node:util';
import { LoggerService, LogLevel as NestLogLevel } from '@nestjs/common';

/** Nest's level names → the usual ones of log pipelines (Nest's `log` is `info`, its `verbose` is `trace`). */
const LEVEL_NAMES: Record<NestLogLevel, string> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/** Fields a log line may carry besides its message: request-scoped lines pass `method`, `socketId`, `connectionId`. */
export type LogFields = Record<string, unknown> & { message: string };

function isStack(value: unknown): value is string {
  return typeof value === 'string' && /\n\s+at /.test(value);
}

/**
 * The server's logger: one JSON object per line on stdout, `{"time","level","instanceId","pid","context","message",…}`
 * with a standard level name. A message given as an object (`{ message, method, connectionId, … }`) adds its fields to
 * the line; an Error adds its stack. Nest's call shapes are understood: `(message, context)` and, for errors,
 * `(message, stack, context)`.
 */
export class JsonLinesLogger implements LoggerService {
  private enabled: Set<NestLogLevel>;

  constructor(
    /** The levels written (Nest's names); bootstrap derives them from LOG_LEVEL. */
    levels: NestLogLevel[],
    private readonly instanceId?: string,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {
    this.enabled = new Set(levels);
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('log', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('verbose', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  setLogLevels(levels: NestLogLevel[]): void {
    this.enabled = new Set(levels);
  }

  isEnabled(level: NestLogLevel): boolean {
    return this.enabled.has(level);
  }

  private write(level: NestLogLevel, message: unknown, params: unknown[]): void {
    if (!this.enabled.has(level)) return;
    let context: string | undefined;
    let stack: string | undefined;
    const rest = [...params];
    if (rest.length > 0 && typeof rest[rest.length - 1] === 'string' && !isStack(rest[rest.length - 1])) context = rest.pop() as string;
    if (
      (level === 'error' || level === 'fatal') &&
      rest.length > 0 &&
      (rest[rest.length - 1] === undefined || isStack(rest[rest.length - 1]))
    ) {
      stack = rest.pop() as string | undefined;
    }
    const line: Record<string, unknown> = {
      time: new Date().toISOString(),
      level: LEVEL_NAMES[level],
      instanceId: this.instanceId,
      pid: process.pid,
      context,
    };
    if (message instanceof Error) {
      line.message = message.message;
      stack ??= message.stack;
    } else if (typeof message === 'object' && message !== null) {
      Object.assign(line, message);
    } else {
      line.message = String(message);
    }
    if (rest.length > 0) line.details = rest.map((item) => (item instanceof Error ? item.message : item));
    if (stack) line.stack = stack;
    this.out.write(`${JSON.stringify(line)}\n`);
  }
}

/**
 * Keeps every line the process writes in the same JSON format: `console.*` calls of libraries, Node's process warnings
 * (printed to stderr otherwise) and a crash (an uncaught exception or unhandled rejection, logged as `fatal`, exit 1).
 */
export function routeProcessOutputTo(logger: JsonLinesLogger): void {
  const line =
    (level: 'log' | 'warn' | 'error' | 'debug') =>
    (...args: unknown[]) =>
      logger[level]({ message: format(...args) }, 'console');
  console.log = line('log');
  console.info = line('log');
  console.warn = line('warn');
  console.error = line('error');
  console.debug = line('debug');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => logger.warn({ message: `${warning.name}: ${warning.message}` }, 'process'));
  const crash = (error: unknown) => {
    logger.fatal(error instanceof Error ? error : { message: String(error) }, 'process');
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}
