import { buildOpenRpcDocument, RpcMethod, RpcNotification } from '@didcomm-mpr/protocol';
import { Logger } from '@nestjs/common';
import { loadConfig } from '../../../apps/server/src/config/config.loader';
import type { DeliveryService } from '../../../apps/server/src/delivery';
import type { MessageRepository } from '../../../apps/server/src/database';
import type { LiveSessionService } from '../../../apps/server/src/live-session';
import { MetricsService } from '../../../apps/server/src/metrics';
import { QueueService } from '../../../apps/server/src/queue';
import { AccessGrant } from '../../../apps/server/src/rpc/access-grant';
import { AccessPolicy } from '../../../apps/server/src/rpc/access.policy';
import { RpcCaller, RpcDispatcher } from '../../../apps/server/src/rpc/rpc-dispatcher.service';
import { RpcParamsValidator } from '../../../apps/server/src/rpc/rpc-params.validator';
import { InMemoryLiveSessions } from './in-memory-live-sessions';
import { InMemoryMessageRepository } from './in-memory-message.repository';

/** A socket that holds sessions and drops what it is sent (the dispatcher only passes it on), with an open grant. */
const HOLDER: RpcCaller = { id: 'fuzz', isOpen: true, bufferedAmount: 0, send: async () => undefined, grant: AccessGrant.anonymous() };

/**
 * The server's JSON-RPC entry, `RpcDispatcher.handleFrame`, with the real queue service behind it (validation, sizes,
 * quotas, the raw JSON of payloads) and thin in-memory stand-ins where storage and the fleet would be: the repository,
 * the delivery (nobody holds a session here) and the live sessions. Small limits, so that inputs reach the quota, the
 * payload limit and the take limit.
 */
export class RpcDispatcherHarness {
  readonly dispatcher: RpcDispatcher;

  constructor() {
    // The dispatcher logs unexpected errors; the oracle reports them instead.
    Logger.overrideLogger(false);
    const config = loadConfig({
      MAX_PAYLOAD_BYTES: '2048',
      MAX_QUEUE_MESSAGES: '20',
      MAX_QUEUE_BYTES: '16384',
      MAX_TAKE_MESSAGES: '10',
      LOG_LEVEL: 'error',
    });
    const metrics = new MetricsService();
    const delivery = {
      preclaimToken: () => undefined,
      committed: () => undefined,
      localSession: () => undefined,
    } as unknown as DeliveryService;
    const queue = new QueueService(config, new InMemoryMessageRepository() as unknown as MessageRepository, delivery, metrics);
    const document = buildOpenRpcDocument({ maxPayloadBytes: config.maxPayloadBytes, maxTakeMessages: config.maxTakeMessages });
    this.dispatcher = new RpcDispatcher(
      queue,
      new InMemoryLiveSessions() as unknown as LiveSessionService,
      metrics,
      new RpcParamsValidator(document),
      document,
      new AccessPolicy(metrics),
    );
  }

  handle(frame: string): Promise<string | undefined> {
    return this.dispatcher.handleFrame(frame, HOLDER);
  }
}

/** Method and member names of the protocol, and its literals, for the mutator's dictionary. */
export const RPC_DICTIONARY = [
  ...['jsonrpc', '2.0', 'id', 'method', 'params', 'result', 'error'],
  ...Object.values(RpcMethod),
  ...Object.values(RpcNotification),
  ...[
    'connectionId',
    'recipientDids',
    'recipientDid',
    'payload',
    'messageId',
    'messageIds',
    'pushNotificationToken',
    'type',
    'token',
    'appId',
  ],
  ...['ttlMs', 'limit', 'limitBytes', 'deleteMessages', 'sessionId', 'reclaim', 'fcm', 'apns', 'did:example:alice'],
];
