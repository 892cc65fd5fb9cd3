/** The metrics module's facade: the instance's Prometheus registry and the counters every module may use. */
export { MetricsModule } from './metrics.module';
export { MetricsService } from './metrics.service';
