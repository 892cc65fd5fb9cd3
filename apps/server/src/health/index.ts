/** The health module's facade. */
export { HealthModule } from './health.module';
