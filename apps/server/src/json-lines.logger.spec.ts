import { Writable } from 'node:stream';
import { Logger, LogLevel } from '@nestjs/common';
import { JsonLinesLogger } from './json-lines.logger';

const ALL: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** A logger writing into an array of parsed lines. */
function capture(levels: LogLevel[] = ALL): {
  logger: JsonLinesLogger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString('utf8');
      expect(text.endsWith('\n')).toBe(true);
      expect(text.slice(0, -1)).not.toContain('\n');
      lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  return { logger: new JsonLinesLogger(levels, 'instance-7', out), lines };
}

describe('JsonLinesLogger', () => {
  it('writes one JSON object per line with a standard level name, the instance id, the context and the message', () => {
    const { logger, lines } = capture();
    logger.log('started', 'Main');
    logger.warn('slow', 'Database');
    logger.debug('detail', 'Redis');
    logger.verbose('chatter', 'Redis');
    logger.fatal('gone', 'Main');
    expect(lines.map((line) => line.level)).toEqual(['info', 'warn', 'debug', 'trace', 'fatal']);
    expect(lines[0]).toEqual({
      time: expect.any(String),
      level: 'info',
      instanceId: 'instance-7',
      pid: process.pid,
      context: 'Main',
      message: 'started',
    });
    expect(new Date(lines[0].time as string).toISOString()).toBe(lines[0].time);
  });

  it("understands Nest's error shapes: (message, stack, context), (message, undefined, context), and an Error", () => {
    const { logger, lines } = capture();
    const error = new Error('boom');
    logger.error('failed', error.stack, 'Queue');
    logger.error('failed quietly', undefined, 'Queue');
    logger.error(error);
    expect(lines[0]).toMatchObject({ level: 'error', context: 'Queue', message: 'failed', stack: error.stack });
    expect(lines[1]).toMatchObject({ level: 'error', context: 'Queue', message: 'failed quietly' });
    expect(lines[1]).not.toHaveProperty('stack');
    expect(lines[2]).toMatchObject({ level: 'error', message: 'boom', stack: error.stack });
  });

  it('adds the fields of an object message: request-scoped lines carry method, socket and connection', () => {
    const { logger, lines } = capture();
    logger.error({ message: 'Unexpected error', method: 'addMessage', socketId: 's-1', connectionId: 'c-1' }, undefined, 'RpcDispatcher');
    expect(lines[0]).toMatchObject({
      level: 'error',
      context: 'RpcDispatcher',
      message: 'Unexpected error',
      method: 'addMessage',
      socketId: 's-1',
      connectionId: 'c-1',
    });
  });

  it('keeps a message with line breaks or quotes on one line, and writes nothing below the configured level', () => {
    const { logger, lines } = capture(['fatal', 'error', 'warn']);
    logger.log('not written', 'Main');
    logger.debug('not written', 'Main');
    logger.warn('two\nlines and "quotes"', 'Main');
    expect(lines).toHaveLength(1);
    expect(lines[0].message).toBe('two\nlines and "quotes"');
  });

  it("serves Nest's Logger facade (what every module logs through)", () => {
    const { logger, lines } = capture();
    Logger.overrideLogger(logger);
    try {
      new Logger('Delivery').log('sent');
      new Logger('Delivery').error('failed');
      new Logger('Gateway').debug({ message: 'socket error', socketId: 's-2' });
    } finally {
      Logger.overrideLogger(false);
    }
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', context: 'Delivery', message: 'sent' }),
      expect.objectContaining({ level: 'error', context: 'Delivery', message: 'failed' }),
      expect.objectContaining({ level: 'debug', context: 'Gateway', message: 'socket error', socketId: 's-2' }),
    ]);
  });
});
