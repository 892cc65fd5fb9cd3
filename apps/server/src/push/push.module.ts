import { Global, Module } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MetricsService } from '../health/metrics.service';
import { createRedisClient } from '../pubsub/redis-client.factory';
import { ApnsProviderFactory } from './apns-provider.factory';
import { ApnsPushAdapter } from './apns-push.adapter';
import { FcmAppFactory } from './fcm-app.factory';
import { FcmPushAdapter } from './fcm-push.adapter';
import { InProcessPushWindowStore } from './in-process-push-window.store';
import { NoopPushAdapter } from './noop-push.adapter';
import { PushTokenRepository } from './push-token.repository';
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
 * configured, in-process otherwise), the no-op adapter otherwise (no token memory, no Redis connection).
 */
@Global()
@Module({
  providers: [
    FcmAppFactory,
    ApnsProviderFactory,
    PushTokenRepository,
    {
      provide: PushPort,
      inject: [APP_CONFIG, FcmAppFactory, ApnsProviderFactory, PushTokenRepository, MetricsService, ModuleRef],
      useFactory: (
        config: AppConfig,
        fcmApps: FcmAppFactory,
        apnsProviders: ApnsProviderFactory,
        tokens: PushTokenRepository,
        metrics: MetricsService,
        moduleRef: ModuleRef,
      ): PushPort => {
        const transports = transportsFor(config, fcmApps, apnsProviders);
        if (transports.length === 0) return new NoopPushAdapter();
        const windows =
          config.redis.mode === 'none'
            ? new InProcessPushWindowStore()
            : new RedisPushWindowStore(createRedisClient(config.redis, 'publisher', `mpr-push-${config.instanceId}`));
        return new PushService(config, transports, tokens, windows, metrics, moduleRef);
      },
    },
  ],
  exports: [PushPort],
})
export class PushModule {}
