import { StorageException, StorageExceptionCode } from './storage.exception';

const pgError = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('StorageException.from', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a query timeout', new Error('Query read timeout')],
    ['a connect timeout', new Error('Connection terminated due to connection timeout')],
    ['a connection exception (08006)', pgError('08006')],
    ['an admin shutdown (57P01)', pgError('57P01', 'terminating connection due to administrator command')],
    ['a server starting up (57P03)', pgError('57P03', 'the database system is starting up')],
  ])('%s: retryable, and PostgreSQL unreachable', (_name, error) => {
    const mapped = StorageException.from(error);
    expect(mapped.code).toBe(StorageExceptionCode.Unavailable);
    expect(mapped.unreachable).toBe(true);
  });

  it.each([
    ['a deadlock (40P01)', '40P01'],
    ['a serialization failure (40001)', '40001'],
    ['a full disk (53100)', '53100'],
    ['too many connections (53300)', '53300'],
    ['a write on a standby (25006, read-only transaction)', '25006'],
    ['every pooled connection busy for the whole connect timeout', ''],
  ])('%s: retryable, but only this statement failed', (_name, code) => {
    const mapped = StorageException.from(code ? pgError(code) : new Error('timeout exceeded when trying to connect'));
    expect(mapped.code).toBe(StorageExceptionCode.Unavailable);
    expect(mapped.unreachable).toBe(false);
  });

  it('a statement error (a message that mentions connection_id) is not retryable and not an outage', () => {
    const mapped = StorageException.from(pgError('23502', 'null value in column "connection_id" violates not-null constraint'));
    expect(mapped.code).toBe(StorageExceptionCode.QueryFailed);
    expect(mapped.unreachable).toBe(false);
  });

  it('keeps an already classified exception as it is', () => {
    const original = StorageException.from(pgError('08006'));
    expect(StorageException.from(original)).toBe(original);
  });
});
