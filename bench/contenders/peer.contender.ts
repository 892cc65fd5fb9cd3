import { ChildProcess, fork, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as readline from 'node:readline';
import { REPO_ROOT, sql } from '@didcomm-mpr/test-kit';
import { nowMs, withTimeout } from '../async-utils';
import { backlogArrivalOrder, BacklogSpec } from '../backlog';
import { ClosedLoopResult, DrainResult, OpenLoopResult, ScheduleOptions } from '../load-loops';
import { BENCH_RECIPIENT_DID, PayloadPool } from '../payload';
import { PeerDatabase, PeerEnvelope, PeerReply, PeerRequest } from '../peer/peer-protocol.types';
import { Contender, LoadResult, SEED_CHUNK } from './contender';

export const PEER_DIR = path.join(REPO_ROOT, 'bench', 'peer');
const PEER_PACKAGE = '@credo-ts/didcomm-transport-queue-postgres';
/** Adds in flight while the backlog arrives, as many as the 32-caller add figure. */
const LOAD_IN_FLIGHT = 32;

/** The versions bench/peer/package.json asks for, against what bench/peer/node_modules holds (undefined: not installed). */
function installedMismatch(): string | undefined {
  const wanted = (JSON.parse(readFileSync(path.join(PEER_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> })
    .dependencies;
  for (const [name, version] of Object.entries(wanted)) {
    const file = path.join(PEER_DIR, 'node_modules', name, 'package.json');
    if (!existsSync(file)) return `${name} is not installed`;
    const installed = (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    if (installed !== version) return `${name} ${installed} is installed, ${version} wanted`;
  }
  return undefined;
}

/**
 * Installs the peer's own dependencies (`npm ci` from bench/peer/package-lock.json) unless they are there already.
 * `npm run bench:peer-install` does the same by hand.
 */
export function ensurePeerInstalled(): void {
  const mismatch = installedMismatch();
  if (!mismatch) return;
  console.log(`[bench] ${mismatch}: npm ci in bench/peer (the peer's own dependencies, from its lockfile) …`);
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PEER_DIR, stdio: 'inherit', timeout: 10 * 60_000 });
  if (result.status !== 0) throw new Error(`npm ci in bench/peer failed (${result.error?.message ?? `exit ${result.status}`})`);
  const still = installedMismatch();
  if (still) throw new Error(`after npm ci in bench/peer: ${still}`);
}

/** The peer library's version as installed (for the report). */
function peerVersions(): string {
  const version = (name: string) =>
    (JSON.parse(readFileSync(path.join(PEER_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  return `${PEER_PACKAGE} ${version(PEER_PACKAGE)} with @credo-ts/core ${version('@credo-ts/core')}, @credo-ts/didcomm ${version('@credo-ts/didcomm')}`;
}

/**
 * The in-process peer library, run in a child process of its own (bench/peer/queue-peer.process.ts) so that its
 * module resolution (Credo 0.6.3) and its CPU are its own, as the server's are. Each request asks the child for one
 * whole measurement, which it makes in-process with the bench's loops; only the figures cross the IPC channel.
 */
export class PeerContender implements Contender {
  readonly name = 'peer' as const;
  readonly table = 'queued_message';
  readonly description: string;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly databaseUrl: string,
    private readonly payloads: PayloadPool,
  ) {
    this.description =
      `${peerVersions()}, in-process in a child Node process (pid ${child.pid}) on the real DependencyManager, AgentConfig, EventEmitter, AgentContext and ` +
      `DidCommMessagePickupSessionService, with a stub DidCommMessagePickupApi (delivery goes to the bench's holder instead of a DIDComm transport); ` +
      `its message pool (pg.Pool, default size) re-made on the right port after initialize()`;
    child.on('message', (reply: PeerReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`peer: ${reply.error}`));
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      for (const waiter of this.pending.values()) waiter.reject(new Error(`the peer process exited (${signal ?? `code ${code}`})`));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Installs the peer if needed, starts its process and initialises the library on `databaseUrl` (an existing, empty database). */
  static async start(databaseUrl: string, payloads: PayloadPool): Promise<PeerContender> {
    ensurePeerInstalled();
    const url = new URL(databaseUrl);
    const database: PeerDatabase = {
      host: url.hostname,
      port: Number(url.port || 5432),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1),
    };
    // The library builds its LISTEN connection's URL by hand from user, password and host.
    if (/[@/:?#%]/.test(database.password))
      throw new Error('the peer library puts the password into a URL unescaped: use a database user whose password has no @ / : ? # %');
    const child = fork(path.join(PEER_DIR, 'queue-peer.process.ts'), [], {
      cwd: REPO_ROOT,
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      // The library reads PGPORT for everything but its message pool.
      env: { ...process.env, PGPORT: String(database.port), PGHOST: database.host },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [child.stdout!, child.stderr!])
      readline.createInterface({ input: stream }).on('line', (line) => console.log(`[peer] ${line}`));
    const peer = new PeerContender(child, databaseUrl, payloads);
    try {
      await peer.request({ op: 'init', database, payloads: payloads.texts, recipientDid: BENCH_RECIPIENT_DID }, 120_000);
    } catch (error) {
      peer.killNow();
      throw error;
    }
    return peer;
  }

  async empty(): Promise<void> {
    await sql(this.databaseUrl, 'TRUNCATE queued_message');
    await sql(this.databaseUrl, 'ANALYZE queued_message');
  }

  async vacuum(analyze: boolean): Promise<void> {
    await sql(this.databaseUrl, analyze ? 'VACUUM (ANALYZE) queued_message' : 'VACUUM queued_message');
  }

  add(callers: number, connectionIds: string[], warmupMs: number, measureMs: number): Promise<ClosedLoopResult> {
    return this.request(
      { op: 'add', callers, connectionIds, warmupMs, measureMs },
      warmupMs + measureMs + 60_000,
    ) as Promise<ClosedLoopResult>;
  }

  load(spec: BacklogSpec): Promise<LoadResult> {
    return this.request({ op: 'load', spec, inFlight: LOAD_IN_FLIGHT }, 30 * 60_000) as Promise<LoadResult>;
  }

  /** The library's own row format (its addMessage's INSERT), many rows a statement, in arrival order. */
  async seed(spec: BacklogSpec): Promise<LoadResult> {
    const order = backlogArrivalOrder(spec);
    const started = nowMs();
    for (let from = 0; from < order.length; from += SEED_CHUNK) {
      await sql(
        this.databaseUrl,
        `INSERT INTO queued_message (connection_id, recipient_dids, encrypted_message, state, created_at)
         SELECT c::uuid, ARRAY[$2]::text[], ($3::jsonb[])[1 + (g + $5) % $4], 'pending', clock_timestamp()
         FROM unnest($1::text[]) WITH ORDINALITY AS t(c, g) ORDER BY g`,
        [order.slice(from, from + SEED_CHUNK), BENCH_RECIPIENT_DID, this.payloads.texts, this.payloads.texts.length, from],
      );
    }
    const seconds = (nowMs() - started) / 1000;
    return { rows: order.length, seconds, rate: order.length / seconds, how: "SQL in the library's row format" };
  }

  async removeConnection(connectionId: string): Promise<void> {
    await sql(this.databaseUrl, 'DELETE FROM queued_message WHERE connection_id = $1', [connectionId]);
  }

  drain(connectionId: string, expected: number, maxMs: number): Promise<DrainResult> {
    return this.request({ op: 'drain', connectionId, expected, maxMs }, maxMs + 60_000) as Promise<DrainResult>;
  }

  live(connectionIds: string[], schedule: ScheduleOptions): Promise<OpenLoopResult> {
    return this.request(
      { op: 'live', connectionIds, schedule },
      schedule.warmupMs + schedule.durationMs + 120_000,
    ) as Promise<OpenLoopResult>;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.request({ op: 'shutdown' }, 15_000).catch((error: unknown) =>
      console.error(`[bench] stopping the peer: ${(error as Error).message}`),
    );
    await withTimeout(exited, 5_000, 'the peer process exit').catch(() => this.killNow());
  }

  /** From a process 'exit' handler: synchronous. */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private request(request: PeerRequest, timeoutMs: number): Promise<unknown> {
    if (this.exited) return Promise.reject(new Error('the peer process has exited'));
    const id = this.nextId++;
    const answer = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const envelope: PeerEnvelope = { id, request };
      this.child.send(envelope, (error) => {
        if (!error) return;
        this.pending.delete(id);
        reject(new Error(`peer: ${request.op} not sent: ${error.message}`));
      });
    });
    return withTimeout(answer, timeoutMs, `peer ${request.op}`).finally(() => this.pending.delete(id));
  }
}
