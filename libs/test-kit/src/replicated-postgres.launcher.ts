import { execFile, ExecFileOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { findFreePort } from '@didcomm-mpr/embedded-postgres';
import { sql } from './test-database.factory';

/** Debian's PostgreSQL 15 server binaries (initdb, pg_ctl, pg_basebackup, postgres); PG_BIN_DIR overrides. */
export const DEBIAN_PG_BIN_DIR = '/usr/lib/postgresql/15/bin';

export interface ReplicatedPostgresOptions {
  /**
   * `true`: the replica is in `synchronous_standby_names` and `synchronous_commit = on`, so a commit is acknowledged
   * only once the replica has flushed it. `false`: asynchronous streaming (the default of most set-ups).
   */
  synchronous: boolean;
  /** The database the server under test uses (created on the primary, streamed to the replica). */
  database: string;
}

/** One PostgreSQL server of the pair: its data directory and loopback port. */
interface Member {
  name: 'primary' | 'replica';
  dataDir: string;
  port: number;
}

const REPLICA_NAME = 'replica';

/**
 * A primary with a streaming replica, from the PostgreSQL server binaries of the machine (Debian's, which include
 * `pg_basebackup`), on free loopback ports, in a temporary directory. As root, every binary runs as the unprivileged
 * `postgres` user (PostgreSQL refuses to run as root). For failover tests: crash the primary, promote the replica,
 * and move clients to it (a TcpProxy in front plays the virtual IP).
 */
export class ReplicatedPostgres {
  private constructor(
    private readonly bin: string,
    private readonly root: string,
    private readonly user: { uid: number; gid: number } | undefined,
    readonly primary: Member,
    readonly replica: Member,
    private readonly options: ReplicatedPostgresOptions,
  ) {}

  static async start(options: ReplicatedPostgresOptions): Promise<ReplicatedPostgres> {
    const bin = process.env.PG_BIN_DIR ?? DEBIAN_PG_BIN_DIR;
    for (const tool of ['initdb', 'pg_ctl', 'pg_basebackup']) {
      if (!existsSync(path.join(bin, tool))) {
        throw new Error(
          `${path.join(bin, tool)} is missing: the failover tests need PostgreSQL's server binaries (Debian: apt-get install postgresql-15), or PG_BIN_DIR`,
        );
      }
    }
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mpr-replicated-pg-'));
    const user = process.getuid?.() === 0 ? await postgresUser() : undefined;
    if (user) await fs.chown(root, user.uid, user.gid);
    const pair = new ReplicatedPostgres(
      bin,
      root,
      user,
      { name: 'primary', dataDir: path.join(root, 'primary'), port: await findFreePort() },
      { name: 'replica', dataDir: path.join(root, 'replica'), port: await findFreePort() },
      options,
    );
    try {
      await pair.initPrimary();
      await pair.startMember(pair.primary);
      await sql(pair.urlOf(pair.primary, 'postgres'), `CREATE DATABASE ${options.database}`);
      await pair.run('pg_basebackup', [
        '-h',
        '127.0.0.1',
        '-p',
        String(pair.primary.port),
        '-U',
        'postgres',
        '-D',
        pair.replica.dataDir,
        '-X',
        'stream',
        '-R',
        '-c',
        'fast',
      ]);
      // -R wrote standby.signal and a primary_conninfo; this one names the replica, as synchronous_standby_names does.
      await pair.appendConf(pair.replica, [
        `port = ${pair.replica.port}`,
        `unix_socket_directories = '${pair.replica.dataDir}'`,
        `primary_conninfo = 'host=127.0.0.1 port=${pair.primary.port} user=postgres application_name=${REPLICA_NAME}'`,
      ]);
      await pair.startMember(pair.replica);
      await pair.waitStreaming('async');
      if (options.synchronous) {
        // Only now: with a synchronous standby named before it streams, every commit (CREATE DATABASE too) would wait.
        await sql(pair.urlOf(pair.primary, 'postgres'), `ALTER SYSTEM SET synchronous_standby_names = '${REPLICA_NAME}'`);
        await sql(pair.urlOf(pair.primary, 'postgres'), 'SELECT pg_reload_conf()');
        await pair.waitStreaming('sync');
      }
      return pair;
    } catch (error) {
      await pair.destroy();
      throw error;
    }
  }

  /** Connection URL of a member (through no proxy). */
  urlOf(member: Member, database = this.options.database): string {
    return `postgres://postgres@127.0.0.1:${member.port}/${database}`;
  }

  /** The primary dies as in a crash: an immediate shutdown (no checkpoint, connections dropped, backends gone). */
  async crashPrimary(): Promise<void> {
    await this.run('pg_ctl', ['-D', this.primary.dataDir, '-m', 'immediate', '-w', 'stop']);
  }

  /** Promotes the replica to a primary and waits until it accepts writes. */
  async promoteReplica(): Promise<void> {
    await this.run('pg_ctl', ['-D', this.replica.dataDir, '-w', '-t', '60', 'promote']);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [row] = await sql<{ in_recovery: boolean }>(this.urlOf(this.replica, 'postgres'), 'SELECT pg_is_in_recovery() AS in_recovery');
      if (!row.in_recovery) return;
      if (Date.now() > deadline) throw new Error('the promoted replica is still in recovery after 30 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The primary's view of the replica: streaming state, sync state, and how far behind it is. */
  async replicationState(): Promise<{ state: string; sync_state: string; lag_bytes: string } | undefined> {
    const rows = await sql<{ state: string; sync_state: string; lag_bytes: string }>(
      this.urlOf(this.primary, 'postgres'),
      `SELECT state, sync_state, (pg_current_wal_lsn() - flush_lsn)::text AS lag_bytes FROM pg_stat_replication WHERE application_name = $1`,
      [REPLICA_NAME],
    );
    return rows[0];
  }

  async destroy(): Promise<void> {
    for (const member of [this.primary, this.replica]) {
      if (existsSync(path.join(member.dataDir, 'postmaster.pid'))) {
        await this.run('pg_ctl', ['-D', member.dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      }
    }
    await fs.rm(this.root, { recursive: true, force: true });
  }

  private async initPrimary(): Promise<void> {
    await this.run('initdb', ['-D', this.primary.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
    await this.appendConf(this.primary, [
      `port = ${this.primary.port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${this.primary.dataDir}'`,
      'wal_level = replica',
      'max_wal_senders = 5',
      'synchronous_commit = on',
      'max_connections = 200',
    ]);
  }

  private async appendConf(member: Member, lines: string[]): Promise<void> {
    await fs.appendFile(path.join(member.dataDir, 'postgresql.auto.conf'), `\n${lines.join('\n')}\n`);
  }

  private async startMember(member: Member): Promise<void> {
    await this.run('pg_ctl', ['-D', member.dataDir, '-l', path.join(this.root, `${member.name}.log`), '-w', '-t', '60', 'start']);
  }

  private async waitStreaming(wanted: 'sync' | 'async'): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const state = await this.replicationState();
      if (state?.state === 'streaming' && state.sync_state === wanted) return;
      if (Date.now() > deadline)
        throw new Error(`the replica is not streaming (${wanted}) after 60 s: ${JSON.stringify(state)}; see ${this.root}/replica.log`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Runs one of the binaries (as the postgres user when root) and fails with its output. */
  private run(tool: string, args: string[]): Promise<void> {
    const options: ExecFileOptions = { cwd: this.root, env: { ...process.env, LC_ALL: 'C' }, timeout: 120_000, ...(this.user ?? {}) };
    return new Promise((resolve, reject) => {
      execFile(path.join(this.bin, tool), args, options, (error, stdout, stderr) => {
        if (error) reject(new Error(`${tool} ${args.join(' ')} failed: ${error.message}\n${String(stdout)}${String(stderr)}`));
        else resolve();
      });
    });
  }
}

/** The system user the Debian packages create; PostgreSQL refuses to run as root. */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const id = (flag: string) =>
    new Promise<number>((resolve, reject) =>
      execFile('id', [flag, 'postgres'], (error, stdout) =>
        error
          ? reject(new Error(`no "postgres" system user to run PostgreSQL as: ${error.message}`))
          : resolve(Number(String(stdout).trim())),
      ),
    );
  return { uid: await id('-u'), gid: await id('-g') };
}
