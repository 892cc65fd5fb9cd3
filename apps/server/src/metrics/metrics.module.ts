import { Global, Module } from '@nestjs/common';
import { MetricsService } from './metrics.service';

/** Global: every module counts here, and it imports nothing of theirs. */
@Global()
@Module({
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
