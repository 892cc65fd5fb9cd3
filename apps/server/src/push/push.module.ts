import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config';
import { DatabaseModule, MessageRepository, PushTokenRepository } from '../database';
import { MetricsService } from '../metrics';
import { RedisConnections, RedisModule } from '../redis';
import { SessionRegistryModule, SessionRegistryPort } from '../session-registry';
import { ApnsProviderFactory } from './apns-provider.factory';
import { ApnsPushAdapter } from './apns-push.adapter';
import { FcmAppFactory } from './fcm-app.factory';
import { FcmPushAdapter } from './fcm-push.adapter';
import { InProcessPushWindowStore } from './in-process-push-window.store';
import { NoopPushAdapter } from './noop-push.adapter';
import { PushTransport } from './push-transport.port';
import { PushPort } from './push.port';
import { PushService } from './push.service';
import { RedisPushWindowStore } from './redis-push-window.store';
import { WebhookPushAdapter } from './webhook-push.adapter';

/** The transports the configuration asks for: FCM, APNs and the webhook, each independently. */
function transportsFor(config: AppConfig, fcmApps: FcmAppFactory, apnsProviders: ApnsProviderFactory): PushTransport[] {
  const { push } = config;
  const transports: PushTransport[] = [];
  if (push.fcm) transports.push(new FcmPushAdapter(push.fcm, push, fcmApps, config.instanceId));
  if (push.apns) transports.push(new ApnsPushAdapter(push.apns, push, apnsProviders));
  if (push.webhook) transports.push(new WebhookPushAdapter(push.webhook, push));
  return transports;
}

/**
 * The push port: `PushService` when at least one transport is configured (coalescing windows in Redis when Redis is
 * configured, in-process otherwise), the no-op adapter otherwise (no token memory, no Redis work).
 */
@Module({
  imports: [DatabaseModule, RedisModule, SessionRegistryModule],
  providers: [
    FcmAppFactory,
    ApnsProviderFactory,
    {
      provide: PushPort,
      inject: [
        APP_CONFIG,
        FcmAppFactory,
        ApnsProviderFactory,
        PushTokenRepository,
        MetricsService,
        RedisConnections,
        SessionRegistryPort,
        MessageRepository,
      ],
      useFactory: (
        config: AppConfig,
        fcmApps: FcmAppFactory,
        apnsProviders: ApnsProviderFactory,
        tokens: PushTokenRepository,
        metrics: MetricsService,
        redis: RedisConnections | null,
        sessions: SessionRegistryPort,
        messages: MessageRepository,
      ): PushPort => {
        const transports = transportsFor(config, fcmApps, apnsProviders);
        if (transports.length === 0) return new NoopPushAdapter();
        const windows = redis ? new RedisPushWindowStore(redis.commands) : new InProcessPushWindowStore();
        return new PushService(config, transports, tokens, windows, metrics, sessions, messages);
      },
    },
  ],
  exports: [PushPort],
})
export class PushModule {}
