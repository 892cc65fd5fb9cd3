import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { IncomingMessage } from 'node:http';
import * as path from 'node:path';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AccessToken, APP_CONFIG, AppConfig, ConfigError, parseTokensFile, readTokensText, tokenDigest } from '../config';
import { MetricsService } from '../metrics';
import { AccessGrant } from './access-grant';

/** Editors and deploy tools write a file in several steps (truncate and write, or write a temp file and rename). */
const WATCH_DEBOUNCE_MS = 200;

/**
 * The tokens in force and who a WebSocket upgrade is. Tokens come from AUTH_TOKENS_FILE (read again on SIGHUP and
 * whenever its directory changes: editors and Kubernetes replace files by rename, so the directory is watched, not the
 * file), or from AUTH_TOKENS; with neither, everyone is an anonymous mediator of the default tenant.
 *
 * A presented token is hashed and looked up by its SHA-256 digest. The lookup is not constant-time, and needs not be:
 * it compares digests, and learning a stored digest through timing does not give the token (a preimage would be
 * needed), unlike comparing the tokens themselves.
 *
 * A reload that fails (unreadable file, bad JSON, a bad entry) keeps the tokens in force and logs why. One that
 * succeeds takes effect at once for new upgrades; grants of removed tokens (or of tokens whose tenant or role changed)
 * are revoked, and the revocation listeners (the gateway) close their sockets.
 */
@Injectable()
export class AccessTokenRegistry implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('AccessTokens');
  private readonly file: string | undefined;
  /** By SHA-256 hex digest. */
  private grants = new Map<string, AccessGrant>();
  private readonly anonymous: AccessGrant | undefined;
  private readonly revocationListeners: (() => void)[] = [];
  /** SHA-256 of the file last applied: a watch event that changed nothing in it (a touch, another file) is ignored. */
  private appliedFingerprint: string | undefined;
  private watcher: fs.FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.file = config.auth.tokensFile;
    this.anonymous = this.file === undefined && config.auth.tokens.length === 0 ? AccessGrant.anonymous() : undefined;
    this.grants = new Map(config.auth.tokens.map((token) => [token.sha256, AccessGrant.of(token)]));
    this.metrics.tokensLoaded.set(this.grants.size);
    // The file was read and validated by loadConfig a moment ago; if it changed since, the first event reloads it.
    if (this.file !== undefined) this.appliedFingerprint = fingerprint(readTokensText(this.file));
  }

  onModuleInit(): void {
    if (this.anonymous) {
      this.logger.warn(
        'Neither AUTH_TOKENS_FILE nor AUTH_TOKENS is set: any client that reaches this port can connect. Set one in production.',
      );
      return;
    }
    this.logger.log(`${this.grants.size} tokens in force${this.file ? ` from ${this.file}` : ' from AUTH_TOKENS'}: ${this.describe()}`);
    if (this.file === undefined) return;
    if (this.grants.size === 0) this.logger.warn(`${this.file} lists no token: no client can connect until one is added`);
    const file = this.file;
    try {
      this.watcher = fs.watch(path.dirname(file), { persistent: false }, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.reload('File change', true), WATCH_DEBOUNCE_MS);
        this.debounce.unref();
      });
      // A watch that fails later (the directory removed, too many watches) leaves SIGHUP as the way to reload.
      this.watcher.on('error', (error) =>
        this.logger.warn(`Watching ${path.dirname(file)} failed; reload the tokens with SIGHUP: ${error.message}`),
      );
    } catch (error) {
      this.logger.warn(`Cannot watch ${path.dirname(file)}; reload the tokens with SIGHUP: ${(error as Error).message}`);
    }
  }

  onModuleDestroy(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
  }

  /** The grant of the upgrade's token (`Authorization: Bearer <token>`, or `?token=`), or undefined: HTTP 401. */
  authenticate(request: IncomingMessage): AccessGrant | undefined {
    if (this.anonymous) return this.anonymous;
    const presented = presentedToken(request);
    const grant = presented === undefined || presented === '' ? undefined : this.grants.get(tokenDigest(presented));
    if (!grant) this.metrics.upgradesRefused.inc();
    return grant;
  }

  /** Called after each reload that revoked grants (their `revoked` is set). */
  onRevoked(listener: () => void): void {
    this.revocationListeners.push(listener);
  }

  /**
   * Reads AUTH_TOKENS_FILE again and applies it; returns whether it was applied. `onlyIfChanged`: a watch event,
   * which leaves an unchanged file alone. Without a tokens file there is nothing to read (AUTH_TOKENS is fixed at boot).
   */
  reload(trigger: string, onlyIfChanged = false): boolean {
    if (this.file === undefined) {
      this.logger.log(`${trigger}: no AUTH_TOKENS_FILE, nothing to reload`);
      return false;
    }
    let tokens: AccessToken[];
    let read: string;
    try {
      const text = readTokensText(this.file);
      read = fingerprint(text);
      if (onlyIfChanged && read === this.appliedFingerprint) return false;
      tokens = parseTokensFile(text, this.file);
    } catch (error) {
      this.metrics.tokenReloads.inc({ result: 'failed' });
      const reason = error instanceof ConfigError ? error.message : (error as Error).message;
      this.logger.error(`${trigger}: the tokens file was not applied, the ${this.grants.size} tokens in force stay: ${reason}`);
      return false;
    }
    this.apply(trigger, tokens);
    this.appliedFingerprint = read;
    this.metrics.tokenReloads.inc({ result: 'ok' });
    return true;
  }

  private apply(trigger: string, tokens: AccessToken[]): void {
    const next = new Map<string, AccessGrant>();
    const added: string[] = [];
    for (const token of tokens) {
      const kept = this.grants.get(token.sha256);
      if (kept?.sameAccess(token)) {
        kept.update(token);
        next.set(token.sha256, kept);
      } else {
        next.set(token.sha256, AccessGrant.of(token));
        added.push(token.name);
      }
    }
    const revoked = [...this.grants.values()].filter((grant) => next.get(grant.sha256!) !== grant);
    for (const grant of revoked) grant.revoke();
    this.grants = next;
    this.metrics.tokensLoaded.set(next.size);
    this.logger.log(
      `${trigger}: tokens reloaded from ${this.file}: ${next.size} in force (${this.describe()}); ` +
        `new or changed: ${added.length > 0 ? added.join(', ') : 'none'}; revoked: ${revoked.length > 0 ? revoked.map((grant) => grant.name).join(', ') : 'none'}`,
    );
    if (revoked.length === 0) return;
    for (const listener of this.revocationListeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error(`A revocation listener failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
  }

  /** Names, tenants and roles of the tokens in force, for the log (never the tokens or their digests). */
  private describe(): string {
    return [...this.grants.values()].map((grant) => `${grant.name} (${grant.tenant}, ${grant.role})`).join(', ') || 'none';
  }
}

/** The token of an upgrade request: the Authorization header's Bearer token, or else the `token` query parameter. */
function presentedToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match ? match[1].trim() : undefined;
  }
  return new URL(request.url ?? '/', 'http://localhost').searchParams.get('token') ?? undefined;
}

function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
