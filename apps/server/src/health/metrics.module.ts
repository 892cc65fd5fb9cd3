import { Global, Module } from '@nestjs/common';
import { MetricsService } from './metrics.service';

/** Global so every module can count without importing the health endpoints. */
@Global()
@Module({
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
