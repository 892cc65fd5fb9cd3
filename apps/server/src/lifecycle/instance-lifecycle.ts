import { Injectable } from '@nestjs/common';

/**
 * Where this instance stands in its life, for whoever must know without importing the module that changes it: the
 * database module marks the migrations done, the RPC gateway starts draining at SIGTERM, and health reads both for
 * readiness. A plain state at the bottom of the module order, so none of them imports another for it.
 */
@Injectable()
export class InstanceLifecycle {
  private migrated = false;
  private drainingSince: number | undefined;

  /** The committed migrations are applied: the schema is the one this build expects. */
  get migrationsDone(): boolean {
    return this.migrated;
  }

  /** SIGTERM was received: no new sockets or requests are taken (they belong on another instance). */
  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  markMigrationsDone(): void {
    this.migrated = true;
  }

  beginDraining(): void {
    this.drainingSince ??= Date.now();
  }
}
