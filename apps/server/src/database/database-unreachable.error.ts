/** PostgreSQL could not be reached at boot within DATABASE_CONNECT_TIMEOUT_MS. Names the host and port, never the URL. */
export class DatabaseUnreachableError extends Error {
  constructor(
    readonly address: string,
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'DatabaseUnreachableError';
  }
}
