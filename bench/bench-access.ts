import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql, testToken, writeTokensFile } from '@didcomm-mpr/test-kit';

/** Far above any scenario's request rate: the bucket is taken on every request, and never refuses one. */
const UNREACHED_RATE = 1_000_000;

/**
 * BENCH_TOKENS_FILE=1: the server under test runs with an AUTH_TOKENS_FILE holding one mediator token of tenant
 * `bench` with a rate limit, and every socket of the single-server scenarios presents it (as `?token=`), so the
 * figures include the token lookup at the upgrade, the access step of every request and the tenant in every key. A
 * build without tokens files ignores the variable and accepts the token as it accepts anyone: the same bench then
 * measures the build before them (BENCH_SERVER_ENTRY), for paired runs.
 */
export class BenchAccess {
  private constructor(
    /** Set over the server child's environment. */
    readonly env: Record<string, string>,
    /** The tenant of the bench's connections (for the SQL preloads). */
    readonly tenant: string,
    private readonly token: string | undefined,
    private readonly dir: string | undefined,
  ) {}

  static fromEnvironment(): BenchAccess {
    if (process.env.BENCH_TOKENS_FILE !== '1') return new BenchAccess({}, 'default', undefined, undefined);
    const dir = mkdtempSync(path.join(tmpdir(), 'mpr-bench-tokens-'));
    const file = path.join(dir, 'tokens.json');
    const token = testToken('bench', 'bench', 'mediator', UNREACHED_RATE);
    writeTokensFile(file, [token]);
    return new BenchAccess({ AUTH_TOKENS_FILE: file }, token.tenant, token.token, dir);
  }

  get enabled(): boolean {
    return this.token !== undefined;
  }

  /** The server's WebSocket URL with the bench's token, if any. */
  wsUrl(url: string): string {
    if (this.token === undefined) return url;
    const withToken = new URL(url);
    withToken.searchParams.set('token', this.token);
    return withToken.toString();
  }

  cleanup(): void {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * How the SQL preloads name a row's tenant: the column and its value when the schema has tenants, nothing for a build
 * from before them (compared with BENCH_SERVER_ENTRY).
 */
export async function tenantColumn(databaseUrl: string, tenant: string): Promise<{ column: string; value: string }> {
  const rows = await sql(
    databaseUrl,
    `SELECT 1 FROM information_schema.columns WHERE table_name = 'queued_message' AND column_name = 'tenant'`,
  );
  return rows.length > 0 ? { column: 'tenant, ', value: `'${tenant.replace(/'/g, "''")}', ` } : { column: '', value: '' };
}
