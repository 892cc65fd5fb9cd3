import { getHeapStatistics } from 'node:v8';
import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The Prometheus registry of one server instance (a registry per instance, not the global one, so tests can
 * run several servers in one process). Other modules count through this facade; a module whose gauge is read from
 * its own storage at scrape time registers that gauge on `registry` itself (the queue's totals).
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  // The `tenant` label is bounded: tenants come from the tokens file (without one, only `default`).
  readonly messagesAdded = new Counter({
    name: 'mpr_messages_added_total',
    help: 'Messages committed by addMessage',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  readonly messagesTaken = new Counter({
    name: 'mpr_messages_taken_total',
    help: 'Messages returned by takeFromQueue',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  readonly messagesRemoved = new Counter({
    name: 'mpr_messages_removed_total',
    help: 'Messages deleted by removeMessages, removeAllMessages or a deleting take',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  readonly messagesRedelivered = new Counter({
    name: 'mpr_messages_redelivered_total',
    help: 'Sending messages returned to pending',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly messagesExpired = new Counter({
    name: 'mpr_messages_expired_total',
    help: "Expired messages deleted by this instance's sweeps",
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  readonly quotaRejections = new Counter({
    name: 'mpr_quota_rejections_total',
    help: 'addMessage calls refused because the queue was full',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  readonly messagesNotified = new Counter({
    name: 'mpr_messages_notified_total',
    help: 'Messages pushed live to a session holder',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  readonly liveSessions = new Gauge({ name: 'mpr_live_sessions', help: 'Live sessions held by this instance', registers: [this.registry] });
  readonly suspendedSessions = new Gauge({
    name: 'mpr_live_sessions_fenced',
    help: 'Live sessions held here whose delivery is stopped because this instance could not renew its session lease in time (0 normally)',
    registers: [this.registry],
  });
  readonly openSockets = new Gauge({
    name: 'mpr_open_sockets',
    help: 'Open WebSocket connections',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  // Access control. `token` is the token's name in the tokens file (for AUTH_TOKENS, `token-` and a digest prefix).
  readonly accessDenied = new Counter({
    name: 'mpr_access_denied_total',
    help: 'Requests refused for their token: rate_limited (-32004) or forbidden (-32005)',
    labelNames: ['token', 'reason'] as const,
    registers: [this.registry],
  });
  readonly upgradesRefused = new Counter({
    name: 'mpr_upgrades_refused_total',
    help: 'WebSocket upgrades refused with HTTP 401 (no token, or a token that is not configured)',
    registers: [this.registry],
  });
  readonly socketsRevoked = new Counter({
    name: 'mpr_sockets_revoked_total',
    help: 'Sockets closed with 1008 because their token was removed (or its tenant or role changed) by a reload',
    labelNames: ['token'] as const,
    registers: [this.registry],
  });
  readonly tokensLoaded = new Gauge({
    name: 'mpr_auth_tokens',
    help: 'Tokens in force (0: anyone may connect, unless a tokens file is set)',
    registers: [this.registry],
  });
  readonly tokenReloads = new Counter({
    name: 'mpr_auth_token_reloads_total',
    help: 'Reads of AUTH_TOKENS_FILE after boot: ok, or failed (the tokens in force stay)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'mpr_request_duration_seconds',
    help: 'JSON-RPC request latency per method',
    labelNames: ['method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly liveDeliveryDuration = new Histogram({
    name: 'mpr_live_delivery_duration_seconds',
    help: 'From the commit of an added message to its messagesReceived frame written to the holding socket (on another instance: across pub/sub)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'mpr_rpc_errors_total',
    help: 'JSON-RPC error responses per code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly pushSent = new Counter({
    name: 'mpr_push_sent_total',
    help: 'Pushes accepted by a transport',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly pushCoalesced = new Counter({
    name: 'mpr_push_coalesced_total',
    help: 'Push decisions folded into an open coalescing window',
    registers: [this.registry],
  });
  readonly pushRetried = new Counter({
    name: 'mpr_push_retried_total',
    help: 'Push attempts retried after a transient failure',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly pushFallbacks = new Counter({
    name: 'mpr_push_fallback_total',
    help: 'Push decisions made without Redis: uncoalesced (window store unavailable), session-unknown (session registry unavailable, assumed none)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly pushFailed = new Counter({
    name: 'mpr_push_failed_total',
    help: 'Pushes given up, per transport and reason (dead-token, a provider code or HTTP status, overloaded, storage)',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  });
  readonly redisCommandsInFlight = new Gauge({
    name: 'mpr_redis_commands_in_flight',
    help: 'Redis commands waiting for an answer, per connection (commands, subscriber); bounded, beyond the bound they are refused',
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });
  readonly redisCommandTimeouts = new Counter({
    name: 'mpr_redis_command_timeouts_total',
    help: 'Redis commands unanswered within REDIS_COMMAND_TIMEOUT_MS, per connection',
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });
  readonly redisCommandsRefused = new Counter({
    name: 'mpr_redis_commands_refused_total',
    help: 'Redis commands refused without being sent because too many were waiting for an answer, per connection',
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'mpr_' });
    // The heap bound sockets and sessions live within (the default metrics give the used and total heap only).
    new Gauge({ name: 'mpr_nodejs_heap_size_limit_bytes', help: 'V8 heap size limit of this process', registers: [this.registry] }).set(
      getHeapStatistics().heap_size_limit,
    );
  }
}
