import { Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { MetricsService } from '../metrics';
import { PubSubPort } from './pubsub.port';

/** `mpr_pubsub_up{mode}`: 1 while the transport between instances is connected, 0 while it is degraded (Redis away). */
@Injectable()
export class PubSubHealthGauge {
  constructor(pubsub: PubSubPort, metrics: MetricsService) {
    new Gauge({
      name: 'mpr_pubsub_up',
      help: 'Whether pub/sub between instances is connected (mode: in-process, redis, redis-cluster); 0 while Redis is degraded',
      labelNames: ['mode'] as const,
      registers: [metrics.registry],
      collect() {
        const { status, mode } = pubsub.health();
        this.reset();
        this.set({ mode }, status === 'up' ? 1 : 0);
      },
    });
  }
}
